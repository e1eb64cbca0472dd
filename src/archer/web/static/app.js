/* Archer's pages: charts from the JSON specs the server renders (Apache ECharts, served by the
   app), the audience editor's live count, and the build progress. User text is only ever put
   in the page as text nodes, never as HTML. */
(function () {
  "use strict";

  var COLORS = ["#0f766e", "#2563eb", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#65a30d"];
  var numberFmt = new Intl.NumberFormat();
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var charts = [];

  function fontFamily() {
    return getComputedStyle(document.body).fontFamily;
  }

  function pct(v) {
    return v == null ? "" : Math.round(v * 100) + "%";
  }

  var stillCharts = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function base() {
    return {
      color: COLORS,
      textStyle: { fontFamily: fontFamily() },
      tooltip: { trigger: "axis", confine: true },
      grid: { left: 16, right: 24, top: 36, bottom: 8, containLabel: true },
      animation: !stillCharts,
      animationDuration: 400
    };
  }

  function combo(spec) {
    var o = base();
    o.legend = { top: 0, type: "scroll" };
    o.xAxis = { type: "category", data: spec.categories, axisLabel: { hideOverlap: true } };
    o.yAxis = spec.axes.map(function (name, i) {
      return { type: "value", name: name, splitLine: { show: i === 0 },
               axisLabel: { formatter: function (v) { return numberFmt.format(v); } } };
    });
    o.grid.top = 56;
    o.series = spec.series.map(function (s) {
      return { name: s.name, type: s.type, yAxisIndex: s.axis, data: s.data,
               smooth: s.type === "line", showSymbol: s.data.length < 24, symbolSize: 7,
               stack: s.type === "bar" && spec.axes.length > 1 && s.axis === 1 ? "changes" : undefined };
    });
    return o;
  }

  function bars(spec) {
    var o = base();
    o.tooltip.axisPointer = { type: "shadow" };
    var cat = { type: "category", data: spec.categories,
                axisLabel: { hideOverlap: !spec.horizontal, margin: 10 } };
    var val = { type: "value", axisLabel: { formatter: function (v) { return numberFmt.format(v); } } };
    if (spec.horizontal) { cat.inverse = true; o.yAxis = cat; o.xAxis = val; o.grid.top = 8; }
    else { o.xAxis = cat; o.yAxis = val; o.grid.top = 16; }
    o.series = spec.series.map(function (s) {
      return { name: s.name, type: "bar", data: s.data, barMaxWidth: 38,
               label: { show: spec.horizontal, position: "right",
                        formatter: function (p) { return numberFmt.format(p.value); } } };
    });
    return o;
  }

  function funnel(spec) {
    var o = base();
    var top = spec.steps.length ? spec.steps[0].value || 1 : 1;
    o.tooltip = { trigger: "item", formatter: function (p) {
      return p.name + ": " + numberFmt.format(p.value) + " (" + pct(p.value / top) + ")"; } };
    // The labels stand beside the funnel, name over number: inside, the narrow last steps cut
    // them off ("ought again 5,66").
    o.series = [{
      type: "funnel", sort: "none", left: 8, width: "55%", top: 8, bottom: 8, minSize: "8%", gap: 2,
      label: { show: true, position: "right", color: "#1f2933", lineHeight: 15,
               formatter: function (p) { return p.name + "\n" + numberFmt.format(p.value); } },
      labelLine: { show: true, length: 10, lineStyle: { color: "#9aa5b1" } },
      data: spec.steps
    }];
    return o;
  }

  function heatmap(spec) {
    var o = base();
    var values = spec.cells.map(function (c) { return c[2]; });
    var max = spec.percent ? 1 : Math.max.apply(null, values.concat([1]));
    o.tooltip = { trigger: "item", formatter: function (p) {
      var v = p.value; var shown = spec.percent ? pct(v[2]) : numberFmt.format(v[2]);
      return spec.y[v[1]] + " · " + spec.x[v[0]] + ": " + shown + (v[3] ? " — " + v[3] : ""); } };
    o.grid = { left: 8, right: 8, top: 8, bottom: 48, containLabel: true };
    o.xAxis = { type: "category", data: spec.x, name: spec.xname, nameLocation: "middle", nameGap: 26, splitArea: { show: true } };
    o.yAxis = { type: "category", data: spec.y, name: spec.yname, splitArea: { show: true } };
    // dimension 2: the value (the default, the last one, is the cell's label)
    o.visualMap = { min: 0, max: max, calculable: false, show: false, dimension: 2,
                    inRange: { color: ["#f0fdfa", "#5eead4", "#0f766e"] } };
    o.series = [{
      type: "heatmap", data: spec.cells,
      label: { show: spec.labels, fontSize: 11, formatter: function (p) {
        return spec.percent ? pct(p.value[2]) : numberFmt.format(p.value[2]); } },
      emphasis: { itemStyle: { borderColor: "#102a43", borderWidth: 1 } }
    }];
    return o;
  }

  var KINDS = { combo: combo, bars: bars, funnel: funnel, heatmap: heatmap };

  function drawCharts() {
    if (!window.echarts) return;
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var src = document.getElementById(el.getAttribute("data-chart"));
      if (!src) return;
      var spec = JSON.parse(src.textContent);
      if (!spec || !KINDS[spec.kind]) return;
      var chart = echarts.init(el, null, { renderer: "svg" });
      chart.setOption(KINDS[spec.kind](spec));
      el.setAttribute("data-drawn", "true");
      charts.push(chart);
    });
    var pending;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () { charts.forEach(function (c) { c.resize(); }); }, 120);
    });
  }

  // -- small DOM helpers (text only) ----------------------------------------------------------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function post(url, body, accept) {
    var headers = { "X-CSRF-Token": csrf, "Accept": accept || "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers,
                        body: body === undefined ? undefined : JSON.stringify(body) });
  }

  // -- the audience editor ----------------------------------------------------------------------
  function liveCount(textarea) {
    var out = document.getElementById("live");
    var url = textarea.getAttribute("data-live-count");
    var timer, seq = 0, controller;

    function show(nodes) {
      out.textContent = "";
      nodes.forEach(function (n) { out.appendChild(n); });
    }

    // the page's words for what this script writes (the server translates them)
    var words = JSON.parse(out.getAttribute("data-words") || "{}");
    function w(key, english) { return words[key] || english; }

    function showCount(doc) {
      var nodes = [el("p", { "class": "count-line" }, [
        el("strong", { "class": "big", id: "live-count" }, [numberFmt.format(doc.count)]),
        " " + w("of", "of") + " " + numberFmt.format(doc.customers) + " " + w("customers", "customers") + " ",
        el("span", { "class": "muted" }, ["(" + w("as_of", "as of") + " " + doc.as_of + ")"])
      ])];
      if (doc.normalised && doc.normalised.length) {
        nodes.push(el("p", { "class": "small muted", id: "live-normalised" },
                      [w("normalised", "Full-width punctuation read as:") + " " + doc.normalised.join(", ")]));
      }
      if (doc.clauses && doc.clauses.length > 1) {
        nodes.push(el("ul", { "class": "clauses", id: "live-clauses" }, doc.clauses.map(function (c) {
          return el("li", {}, [el("code", {}, [c.clause]), " ", el("span", { "class": "muted" }, [w("alone", "alone:")]),
                               " " + numberFmt.format(c.count)]);
        })));
      }
      show(nodes);
    }

    function showError(e, query) {
      var box = el("div", { "class": "query-error", role: "alert", id: "live-error" }, []);
      if (e.before !== undefined) {
        box.appendChild(el("pre", { "class": "query-mark" }, [e.before, el("mark", {}, [e.at || " "]), e.after]));
      }
      var msg = el("p", {}, [el("strong", {}, [e.message])]);
      if (e.line) msg.appendChild(el("span", { "class": "muted" }, [" (" + w("line", "line") + " " + e.line + ", " + w("column", "column") + " " + e.column + ")"]));
      box.appendChild(msg);
      if (e.not_built && e.link) {
        box.appendChild(el("p", { id: "not-built" }, [w("not_built", "Import the shop's data and build the profiles on the Data page first.") + " ",
          el("a", { href: e.link }, [w("data", "Data")])]));
      }
      if (e.suggestions && e.suggestions.length && e.at) {
        var p = el("p", {}, [w("did_you_mean", "Did you mean") + " "]);
        e.suggestions.forEach(function (s, i) {
          var b = el("button", { type: "button", "class": "link suggestion" }, [s]);
          b.addEventListener("click", function () {
            textarea.value = e.before + s + e.after;
            textarea.dispatchEvent(new Event("input"));
            textarea.focus();
          });
          if (i) p.appendChild(document.createTextNode(" " + w("or", "or") + " "));
          p.appendChild(b);
        });
        p.appendChild(document.createTextNode("?"));
        box.appendChild(p);
      }
      show([box]);
    }

    function run() {
      var query = textarea.value;
      if (!query.trim()) { show([]); return; }
      var mine = ++seq;
      if (controller) controller.abort();
      controller = new AbortController();
      out.setAttribute("aria-busy", "true");
      fetch(url, { method: "POST", credentials: "same-origin", signal: controller.signal,
                   headers: { "Content-Type": "application/json", "Accept": "application/json", "X-CSRF-Token": csrf },
                   body: JSON.stringify({ query: query }) })
        .then(function (r) { return r.json().then(function (doc) { return { status: r.status, doc: doc }; }); })
        .then(function (res) {
          if (mine !== seq) return;
          out.removeAttribute("aria-busy");
          if (res.status === 200) showCount(res.doc);
          else if (res.doc && res.doc.error) showError(res.doc.error, query);
          else showError({ message: res.doc.detail || ("the server answered " + res.status) }, query);
        })
        .catch(function (err) { if (err.name !== "AbortError") showError({ message: String(err) }, query); });
    }

    textarea.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(run, 250);
    });
    if (textarea.value.trim() && !out.querySelector(".query-error")) run();
  }

  // -- the build ------------------------------------------------------------------------------
  function buildProgress(box) {
    var form = document.getElementById("build-form");
    var button = document.getElementById("build-button");
    var bar = document.getElementById("build-progress");
    var text = document.getElementById("build-text");
    var url = box.getAttribute("data-progress");

    function render(doc) {
      box.setAttribute("data-state", doc.state);
      if (doc.state === "running") {
        button.disabled = true;
        bar.hidden = false;
        bar.value = doc.total ? Math.round(100 * doc.done / doc.total) : 0;
        text.textContent = "Building: " + (doc.stage || "starting") + (doc.total ? " (" + doc.done + " of " + doc.total + ")" : "") + "…";
        return true;
      }
      button.disabled = false;
      bar.hidden = doc.state !== "done";
      if (doc.state === "done") {
        bar.value = 100;
        var r = doc.result || {};
        text.textContent = "";
        text.appendChild(document.createTextNode("Built " + numberFmt.format(r.customers || 0) + " customers as of " + r.as_of + " in " + (doc.seconds || 0).toFixed(1) + " s. "));
        text.appendChild(el("a", { href: "/" }, ["See the overview →"]));
      } else if (doc.state === "failed") {
        text.textContent = "The build failed: " + doc.error;
      }
      return false;
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (doc) { if (render(doc)) setTimeout(poll, 500); });
    }

    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      button.disabled = true;
      text.textContent = "Starting the build…";
      post(form.getAttribute("action")).then(function (r) { return r.json(); }).then(function (doc) {
        render(doc);
        setTimeout(poll, 300);
      }).catch(function (err) { button.disabled = false; text.textContent = String(err); });
    });
    if (box.getAttribute("data-state") === "running") poll();
  }

  // -- an import: the form waits for its answer; meanwhile its job's progress is shown --------
  function importProgress(box) {
    var form = document.getElementById("import-form");
    var bar = document.getElementById("import-progress");
    var text = document.getElementById("import-text");
    var url = box.getAttribute("data-progress");
    var watching = false;

    function render(doc) {
      box.setAttribute("data-state", doc.state);
      if (doc.state !== "running") return false;
      bar.hidden = false;
      bar.value = doc.total ? Math.round(100 * doc.done / doc.total) : 0;
      text.textContent = "Importing " + doc.file + " into " + doc.table + ": " + (doc.stage || "starting") +
        (doc.total ? " (" + Math.round(100 * doc.done / doc.total) + "%)" : "") + "…";
      return true;
    }

    function poll(untilDone) {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (doc) {
          var running = render(doc);
          if (running || untilDone) setTimeout(function () { poll(untilDone); }, 500);
          else if (watching === "other" && doc.state !== "running") {
            text.textContent = "The import of " + doc.file + " ended (" + doc.state + "): ";
            text.appendChild(el("a", { href: "/data#imports" }, ["reload to see it"]));
          }
        })
        .catch(function () {});
    }

    if (form) {
      form.addEventListener("submit", function () {
        watching = "mine";
        var button = form.querySelector("button[type=submit]");
        if (button) button.disabled = true;
        bar.hidden = false;
        bar.removeAttribute("value");
        text.textContent = "Uploading…";
        setTimeout(function () { poll(true); }, 300);  // until the answer replaces the page
      });
    }
    if (box.getAttribute("data-state") === "running") { watching = "other"; poll(false); }
  }

  // -- the audience editor's autocomplete: field names, then a field's known values -----------
  function autocomplete(textarea) {
    var box = document.getElementById("suggest");
    if (!box) return;
    var ref = null;
    fetch(textarea.getAttribute("data-reference"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) { ref = doc; render(); });

    function names() {
      return ref.fields.map(function (f) { return f.name; })
        .concat(ref.predicates.map(function (p) { return p.name + "("; }));
    }

    function context() {
      // what is being typed at the cursor: a value after  field = "  or  field in ("…", "  ,
      // else a name
      var before = textarea.value.slice(0, textarea.selectionStart);
      var v = before.match(/([A-Za-z_][A-Za-z0-9_]*)\s*(?:=|!=|\bin\s*\((?:[^)]*,)?)\s*["“「']([^"”」']*)$/i);
      if (v) {
        var field = ref.fields.filter(function (f) { return f.name === v[1]; })[0];
        return { kind: "value", typed: v[2], options: (field && field.values) || [] };
      }
      var n = before.match(/[A-Za-z_][A-Za-z0-9_]*$/);
      return { kind: "name", typed: n ? n[0] : "", options: n ? names() : [] };
    }

    function render() {
      box.textContent = "";
      if (!ref || !ref.fields) return;
      var c = context();
      if (!c.typed && c.kind === "name") return;
      var low = c.typed.toLowerCase();
      var hits = c.options.filter(function (o) {
        return o.toLowerCase().indexOf(low) === 0 && o !== c.typed;
      }).slice(0, 8);
      if (!hits.length) return;
      box.appendChild(document.createTextNode(box.getAttribute("data-label") + " "));
      hits.forEach(function (h) {
        var b = el("button", { type: "button", "class": "link suggestion", "data-value": h }, [h]);
        b.addEventListener("click", function () {
          var at = textarea.selectionStart;
          var start = at - c.typed.length;
          textarea.value = textarea.value.slice(0, start) + h + textarea.value.slice(at);
          textarea.selectionStart = textarea.selectionEnd = start + h.length;
          box.textContent = "";
          textarea.dispatchEvent(new Event("input"));
          textarea.focus();
        });
        box.appendChild(b);
        box.appendChild(document.createTextNode(" "));
      });
    }
    textarea.addEventListener("input", render);
    textarea.addEventListener("click", render);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    var q = document.querySelector("textarea[data-live-count]");
    if (q) liveCount(q);
    if (q && q.getAttribute("data-reference")) autocomplete(q);
    document.querySelectorAll("button.use-example").forEach(function (b) {
      b.addEventListener("click", function () {
        var t = document.getElementById("query");
        t.value = b.getAttribute("data-query");
        t.dispatchEvent(new Event("input"));
        t.focus();
      });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (f) {
      f.addEventListener("submit", function (ev) {
        if (!window.confirm(f.getAttribute("data-confirm"))) ev.preventDefault();
      });
    });
    var b = document.getElementById("build-status");
    if (b) buildProgress(b);
    var i = document.getElementById("import-status");
    if (i) importProgress(i);
  });
})();
