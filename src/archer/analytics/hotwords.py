"""Search hot words: what the shop's visitors search for in a period, which words rise against
a baseline period, and where each word leads (views, purchases, categories, products).

* **Queries** are cleaned before anything else: Unicode NFKC (full-width letters and digits a
  Chinese keyboard types become plain ones), control and format characters dropped, spaces
  collapsed, lower case, cut to :data:`MAX_QUERY_CHARS`. The cleaned query is the *phrase*.
* **Words**: each phrase is segmented by `rjieba <https://pypi.org/project/rjieba/>`_ (the
  Python binding of jieba-rs, a Rust port of jieba's dictionary and HMM). Chosen over jieba
  0.42.1 (last release 2020, pure Python, builds and caches its prefix dictionary in the temp
  folder at first use) and pkuseg (last release 2020, needs model files and a C++ build): rjieba
  is released in 2026, ships abi3 wheels with the dictionary inside, loads in about a second and
  cuts a query in microseconds. The festivals' hot words (``festivals.py``) are added to its
  dictionary so ``双十一`` stays one word. Tokens of one character, punctuation and a few stop
  words are left out.
* **Counting** is set-based in the warehouse (Ibis): distinct raw queries are segmented once in
  Python (at most :data:`MAX_DISTINCT_QUERIES`), their words joined back as a table. A person
  (member, or anonymous id never linked to one) counts once per word and period, so one
  visitor (or robot) searching a word 500 times is one searcher.
* **Rising**: a word's searchers ``a`` in the period and ``b`` in the baseline, out of ``n1``
  and ``n0`` searchers in all. Under "no change in share", given ``a + b``, ``a`` is binomial
  with ``p = n1 / (n1 + n0)`` (the conditional test of two Poisson rates); the one-sided
  p-value is ``P(X ≥ a)``. A word is rising when ``a ≥ min_count``, the Benjamini–Hochberg
  q-value over the tested words is below ``alpha`` and the lower 95 % bound of the share ratio
  (Clopper–Pearson on ``a / (a + b)``) is at least ``min_lift``. So 3 searchers instead of 1 is
  never hot.
* **Where a word leads**: a searcher *viewed after searching* when they viewed a product within
  :data:`VIEW_MINUTES` of the search; *bought after searching* when a paid order of theirs
  (``Snapshot.paid_lines``) was paid within :data:`BUY_DAYS` days of it. Conversion is buyers
  over searchers. The categories and products are those viewed and bought that way.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
from scipy import stats

from archer.errors import Invalid
from archer.festivals import DEFAULT_FESTIVALS, Festival, festival_windows

if TYPE_CHECKING:
    from archer.facts import Snapshot

MAX_QUERY_CHARS = 100  # a cleaned query (phrase) is cut to this many characters
RAW_QUERY_CHARS = 400  # what is read of a raw query before cleaning
MAX_DISTINCT_QUERIES = 200_000  # the most frequent distinct queries segmented per call
MAX_DAYS = 366  # longest period (and baseline)
MAX_TOP = 200  # most rows per list
MAX_LEADS = 5  # categories / products shown per word
MIN_COUNT = 10
ALPHA = 0.01
MIN_LIFT = 1.5
VIEW_MINUTES = 30
BUY_DAYS = 7
STOP_WORDS = frozenset("的 了 和 与 及 或 在 是 有 我 你 the and of for to in on with a an".split())
_SPACE = re.compile(r"\s+")


# -- words -------------------------------------------------------------------------------------
def clean_query(text: str | None) -> str:
    """The phrase of a raw query: NFKC, no control/format characters, one space, lower case,
    at most :data:`MAX_QUERY_CHARS` characters."""
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text[: RAW_QUERY_CHARS * 2])
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch)[0] != "C"
    )
    return _SPACE.sub(" ", text).strip().lower()[:MAX_QUERY_CHARS].strip()


@cache
def _segmenter():
    import rjieba

    seg = rjieba.Jieba()
    for rule in DEFAULT_FESTIVALS:
        for w in rule.hot_words:
            if " " not in w:
                seg.add_word(w.lower(), None, None)
    return seg


def segmenter_name() -> str:
    from importlib.metadata import version

    return f"rjieba {version('rjieba')}"


def words_of(phrase: str) -> list[str]:
    """The distinct words of a cleaned phrase, in order (see the module docstring)."""
    out: list[str] = []
    for tok in _segmenter().cut(phrase):
        tok = tok.strip()
        if len(tok) < 2 or tok in STOP_WORDS or not any(ch.isalnum() for ch in tok):
            continue
        if tok not in out:
            out.append(tok)
    return out


# -- periods -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    """Local days ``start`` … ``end``, both included."""

    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def check(self, what: str = "period") -> Period:
        if self.end < self.start:
            raise Invalid(f"{what}: end {self.end} is before start {self.start}")
        if self.days > MAX_DAYS:
            raise Invalid(f"{what}: {self.days} days; at most {MAX_DAYS}")
        return self

    def before(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        return Period(self.start - timedelta(days=self.days), self.start - timedelta(days=1))

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "days": self.days}


ALIASES = {"11.11": "singles_day", "双十一": "singles_day", "双11": "singles_day",
           "6.18": "618", "12.12": "double_12", "双十二": "double_12", "双12": "double_12",
           "春节": "spring_festival", "母亲节": "mothers_day", "七夕": "qixi",
           "中秋": "mid_autumn", "情人节": "valentines", "女神节": "womens_day"}  # fmt: skip


def festival_key(name: str) -> str:
    """The rule key of a festival given by key, name or a common alias (``11.11``, ``双十一``)."""
    text = name.strip()
    low = text.lower()
    if text in ALIASES:
        return ALIASES[text]
    for r in DEFAULT_FESTIVALS:
        if low in (r.key.lower(), r.name.lower()):
            return r.key
    known = ", ".join(r.key for r in DEFAULT_FESTIVALS)
    raise Invalid(f"festival {name!r}: unknown; expected one of {known}, 11.11, 6.18, 12.12")


def festival_window(name: str, on_or_before: date) -> Festival:
    """The latest window of festival ``name`` that starts on or before ``on_or_before``."""
    key = festival_key(name)
    found = [f for f in festival_windows(on_or_before - timedelta(days=800), on_or_before)
             if f.key == key and f.start <= on_or_before]  # fmt: skip
    if not found:
        raise Invalid(f"festival {name!r}: no window before {on_or_before}")
    return found[-1]


def next_festival_window(name: str, after: date) -> Festival:
    """The first window of festival ``name`` that ends on or after ``after``."""
    key = festival_key(name)
    found = [f for f in festival_windows(after, after + timedelta(days=800))
             if f.key == key and f.end >= after]  # fmt: skip
    if not found:
        raise Invalid(f"festival {name!r}: no window after {after}")
    return found[0]


# -- counting ----------------------------------------------------------------------------------
def _searches(snap: Snapshot, first: date, last: date) -> ir.Table:
    """Search events with a query between local days ``first`` and ``last``: ``who`` (the
    person, or the anonymous id, or the event), ``customer`` (member or null), ``at``, ``day``
    and ``raw`` (the query's first :data:`RAW_QUERY_CHARS` characters)."""
    e = snap.people(snap.events)
    e = e.filter((e.type == "search") & e.query.notnull())
    day = snap.local_day(e.occurred_at)
    e = e.mutate(day=day)
    e = e.filter((e.day >= ibis.literal(first)) & (e.day <= ibis.literal(last)))
    return e.select(
        who=e.person.coalesce(e.anonymous, e.anonymous_id, "event:" + e.event_id),
        customer=e.person,
        at=e.occurred_at,
        day=e.day,
        raw=e.query.substr(0, RAW_QUERY_CHARS),
    )


def _within(s: ir.Table, p: Period) -> ir.BooleanValue:
    return (s.day >= ibis.literal(p.start)) & (s.day <= ibis.literal(p.end))


def _query_map(s: ir.Table) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The distinct raw queries (most frequent first, bounded) → phrase, and → words."""
    q = s.group_by("raw").aggregate(n=s.count()).order_by(ibis.desc("n"), "raw")
    df = q.limit(MAX_DISTINCT_QUERIES + 1).execute()
    cut = len(df) > MAX_DISTINCT_QUERIES
    df = df.head(MAX_DISTINCT_QUERIES)
    phrases, words = [], []
    for raw in df["raw"]:
        phrase = clean_query(raw)
        if not phrase:
            continue
        phrases.append((raw, phrase))
        words += [(raw, w) for w in words_of(phrase)]
    return (
        pd.DataFrame(phrases, columns=["raw", "term"]),
        pd.DataFrame(words, columns=["raw", "term"]),
        cut,
    )


def _term_counts(s: ir.Table, qmap: pd.DataFrame, p: Period) -> pd.DataFrame:
    """Per term: searchers and searches in the period (``a``, ``searches``) and the baseline
    (``b``)."""
    if qmap.empty:
        return pd.DataFrame(columns=["term", "a", "b", "searches"])
    m = ibis.memtable(qmap).rename(_raw="raw")
    j = s.join(m, s.raw == m._raw)
    in_p = _within(j, p)
    g = j.group_by("term").aggregate(
        a=j.who.nunique(where=in_p),
        b=j.who.nunique(where=~in_p),
        searches=j.count(where=in_p),
    )
    return g.execute()


def rise_test(a: np.ndarray, b: np.ndarray, n1: int, n0: int) -> dict[str, np.ndarray]:
    """The conditional binomial test of ``a`` of ``n1`` against ``b`` of ``n0`` (one-sided, a
    rise): p-value, share ratio and its 95 % Clopper–Pearson bounds (inf when ``b`` is 0)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    k = a + b
    p0 = n1 / (n1 + n0) if n1 + n0 else 0.5
    pval = np.where(k > 0, stats.binom.sf(a - 1, k, p0), 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lo_pi = np.where(a > 0, stats.beta.ppf(0.025, a, b + 1), 0.0)
        hi_pi = np.where(b > 0, stats.beta.ppf(0.975, a + 1, b), 1.0)
        odds = n0 / n1 if n1 else np.nan
        ratio = np.where(b > 0, (a / np.maximum(b, 1)) * odds, np.inf)
        lo = lo_pi / (1 - lo_pi) * odds
        hi = np.where(hi_pi < 1, hi_pi / (1 - hi_pi) * odds, np.inf)
    return {"p_value": pval, "lift": ratio, "lift_low": lo, "lift_high": hi}


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values."""
    p = np.asarray(p, float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    q = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(q[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out


def _leads(snap: Snapshot, s: ir.Table, wmap: pd.DataFrame, p: Period, words: list[str]):
    """Per word (of ``words``) in the period: viewers and buyers after searching, and the
    categories and products viewed / bought that way."""
    empty = pd.DataFrame(columns=["term", "viewers", "buyers"])
    sel = wmap[wmap.term.isin(words)]
    if sel.empty:
        return empty, pd.DataFrame(), pd.DataFrame()
    m = ibis.memtable(sel).rename(_raw="raw")
    s = s.filter(_within(s, p))
    w = s.join(m, s.raw == m._raw).select("term", "who", "customer", "at")
    ev = snap.people(snap.events)
    v = ev.filter((ev.type == "view") & ev.product_id.notnull())
    v = v.select(
        _who=v.person.coalesce(v.anonymous, v.anonymous_id), _at=v.occurred_at, _pid=v.product_id
    )
    prods = snap.products.select(_p="product_id", _cat="category")
    v = v.left_join(prods, v._pid == prods._p).select("_who", "_at", "_pid", "_cat")
    viewed = w.join(
        v,
        (w.who == v._who) & (v._at >= w.at) & (v._at <= w.at + ibis.interval(minutes=VIEW_MINUTES)),
    ).select(term="term", who="who", product=v._pid, category=v._cat)
    pl = snap.paid_lines()
    pl = pl.select(_cid=pl.customer_id, _pt=pl.pay_time, _pid=pl.product_id, _cat=pl.category)
    bw = w.filter(w.customer.notnull())
    bought = bw.join(
        pl,
        (bw.customer == pl._cid)
        & (pl._pt >= bw.at)
        & (pl._pt <= bw.at + ibis.interval(days=BUY_DAYS)),
    ).select(term="term", who="who", product=pl._pid, category=pl._cat)
    vc = viewed.group_by("term").aggregate(viewers=viewed.who.nunique())
    bc = bought.group_by("term").aggregate(buyers=bought.who.nunique())
    counts = vc.outer_join(bc, vc.term == bc.term).select(
        term=vc.term.coalesce(bc.term),
        viewers=vc.viewers.fill_null(0),
        buyers=bc.buyers.fill_null(0),
    )
    both = viewed.mutate(kind=ibis.literal("view")).union(bought.mutate(kind=ibis.literal("buy")))
    cats = (
        both.filter(both.category.notnull())
        .group_by("term", "kind", "category")
        .aggregate(people=both.who.nunique())
    )
    prod = both.group_by("term", "kind", "product").aggregate(people=both.who.nunique())
    return counts.execute(), cats.execute(), prod.execute()


def _top(df: pd.DataFrame, term: str, key: str) -> list[dict[str, Any]]:
    """The most-visited ``key`` values of ``term``: people who viewed and who bought."""
    if df.empty:
        return []
    d = df[df.term == term]
    if d.empty:
        return []
    piv = d.pivot_table(index=key, columns="kind", values="people", aggfunc="sum", fill_value=0)
    for k in ("view", "buy"):
        if k not in piv:
            piv[k] = 0
    piv = piv.reset_index().sort_values(["buy", "view", key], ascending=[False, False, True])
    return [
        {key: str(r[key]), "viewers": int(r["view"]), "buyers": int(r["buy"])}
        for _, r in piv.head(MAX_LEADS).iterrows()
    ]


def hot_words(
    snap: Snapshot,
    period: Period,
    baseline: Period | None = None,
    *,
    top: int = 20,
    min_count: int = MIN_COUNT,
    alpha: float = ALPHA,
    min_lift: float = MIN_LIFT,
) -> dict[str, Any]:
    """Top words and phrases of ``period``, the words rising against ``baseline`` (the period
    of the same length just before, by default), and where each word leads."""
    period.check("period")
    baseline = (baseline or period.before()).check("baseline")
    if not 1 <= top <= MAX_TOP:
        raise Invalid(f"top {top}: expected 1 … {MAX_TOP}")
    if min_count < 1:
        raise Invalid(f"min_count {min_count}: expected at least 1")
    if not 0 < alpha < 1:
        raise Invalid(f"alpha {alpha}: expected between 0 and 1")
    first, last = min(period.start, baseline.start), max(period.end, baseline.end)
    s = _searches(snap, first, last)
    s = s.filter(_within(s, period) | _within(s, baseline))
    in_p, in_b = _within(s, period), _within(s, baseline)
    tot = s.aggregate(
        searches=s.count(where=in_p),
        n1=s.who.nunique(where=in_p),
        n0=s.who.nunique(where=in_b),
        base_searches=s.count(where=in_b),
    ).execute()
    n1, n0 = int(tot.n1.iloc[0] or 0), int(tot.n0.iloc[0] or 0)
    doc: dict[str, Any] = {
        "period": period.to_dict(),
        "baseline": baseline.to_dict(),
        "searches": int(tot.searches.iloc[0] or 0),
        "searchers": n1,
        "baseline_searches": int(tot.base_searches.iloc[0] or 0),
        "baseline_searchers": n0,
        "segmenter": segmenter_name(),
        "test": {"min_count": min_count, "alpha": alpha, "min_lift": min_lift,
                 "view_minutes": VIEW_MINUTES, "buy_days": BUY_DAYS},
        "words": [], "rising": [], "phrases": [], "notes": [],
    }  # fmt: skip
    if n1 == 0:
        doc["notes"].append("no search data in the period")
        return doc
    pmap, wmap, cut = _query_map(s)
    if cut:
        doc["notes"].append(f"only the {MAX_DISTINCT_QUERIES:,} most frequent distinct queries "
                            "were read")  # fmt: skip
    words = _with_test(_term_counts(s, wmap, period), n1, n0, min_count, alpha, min_lift)
    phrases = _with_test(_term_counts(s, pmap, period), n1, n0, min_count, alpha, min_lift)
    top_words = words[words.a > 0].head(top)
    rising = words[words.rising].sort_values(["lift_low", "a"], ascending=False).head(top)
    chosen = sorted(set(top_words.term) | set(rising.term))
    counts, cats, prods = _leads(snap, s, wmap, period, chosen)
    counts = counts.set_index("term") if not counts.empty else counts
    doc["words"] = [_row(r, counts, cats, prods, n1) for _, r in top_words.iterrows()]
    doc["rising"] = [_row(r, counts, cats, prods, n1) for _, r in rising.iterrows()]
    doc["phrases"] = [_row(r, None, None, None, n1) for _, r in phrases[phrases.a > 0].head(top)
                      .iterrows()]  # fmt: skip
    if n0 == 0:
        doc["notes"].append("no search data in the baseline: nothing can be called rising")
    return doc


def _with_test(
    c: pd.DataFrame, n1: int, n0: int, min_count: int, alpha: float, min_lift: float
) -> pd.DataFrame:
    c = c.copy()
    for col in ("a", "b", "searches"):
        c[col] = c[col].fillna(0).astype(int) if len(c) else pd.Series(dtype=int)
    t = rise_test(c.a.to_numpy(), c.b.to_numpy(), n1, n0)
    for k, v in t.items():
        c[k] = v
    tested = (c.a >= min_count).to_numpy() & (n0 > 0)
    q = np.ones(len(c))
    q[tested] = bh(c.p_value.to_numpy()[tested])
    c["q_value"] = q
    c["rising"] = tested & (q < alpha) & (c.lift_low.to_numpy() >= min_lift)
    return c.sort_values(["a", "searches", "term"], ascending=[False, False, True])


def _num(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)


def _row(r, counts, cats, prods, n1: int) -> dict[str, Any]:
    term = str(r.term)
    row: dict[str, Any] = {
        "word": term,
        "searchers": int(r.a),
        "searches": int(r.searches),
        "share": round(r.a / n1, 6) if n1 else None,
        "baseline_searchers": int(r.b),
        "lift": _num(r.lift),
        "lift_low": _num(r.lift_low),
        "p_value": float(r.p_value),
        "q_value": float(r.q_value),
        "rising": bool(r.rising),
    }
    if counts is not None:
        has = not counts.empty and term in counts.index
        viewers = int(counts.loc[term, "viewers"]) if has else 0
        buyers = int(counts.loc[term, "buyers"]) if has else 0
        row |= {
            "viewers": viewers,
            "buyers": buyers,
            "conversion": round(buyers / r.a, 4) if r.a else None,
            "categories": _top(cats, term, "category"),
            "products": _top(prods, term, "product"),
        }
    return row


DEFAULT_DAYS = 30


def resolve_period(
    as_of: date,
    *,
    festival: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> tuple[Period, Festival | None]:
    """The period to look at: a festival's latest window starting by ``as_of`` (cut at
    ``as_of``), or ``start`` … ``end``, or the :data:`DEFAULT_DAYS` days ending ``as_of``."""
    if festival and (start or end):
        raise Invalid("give a festival or a start and end, not both")
    if festival:
        f = festival_window(festival, as_of)
        return Period(f.start, min(f.end, as_of)).check(), f
    if (start is None) != (end is None):
        raise Invalid("give both the start and the end of the period")
    if start is not None and end is not None:
        return Period(start, end).check(), None
    return Period(as_of - timedelta(days=DEFAULT_DAYS - 1), as_of), None


def hotwords_report(
    ws,
    *,
    as_of: date | None = None,
    festival: str | None = None,
    start: date | None = None,
    end: date | None = None,
    baseline_start: date | None = None,
    baseline_end: date | None = None,
    top: int = 20,
    min_count: int = MIN_COUNT,
) -> dict[str, Any]:
    """:func:`hot_words` on the workspace's shop as of ``as_of`` (its latest activity by
    default), for a festival or a period; the document the CLI, the API and the page show."""
    from archer.analytics.reports import snapshot

    if (baseline_start is None) != (baseline_end is None):
        raise Invalid("give both the start and the end of the baseline")
    with snapshot(ws, as_of) as snap:
        period, fest = resolve_period(snap.as_of, festival=festival, start=start, end=end)
        base = Period(baseline_start, baseline_end) if baseline_start and baseline_end else None
        doc = hot_words(snap, period, base, top=top, min_count=min_count)
        doc["as_of"] = snap.as_of.isoformat()
    doc["festival"] = (
        {"key": fest.key, "name": fest.name, "start": fest.start.isoformat(),
         "end": fest.end.isoformat(), "day": fest.day.isoformat() if fest.day else None}
        if fest else None
    )  # fmt: skip
    return doc
