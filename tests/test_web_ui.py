"""The operator's pages in a real browser: Debian's Chromium driven by Playwright against a
real uvicorn server on loopback, on a small built sample shop. Each step saves a screenshot
under tests/screenshots/ (docs/app.md shows a copy of them)."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from archer.audiences import count
from archer.audiences import service as svc
from archer.web import create_app
from test_tracking_server import free_port
from test_web_pages import HOSTILE, PASSWORD, make_shop

pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = os.environ.get("ARCHER_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).parent / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUERY = 'net_spent >= 100 and gender = "f"'
AUDIENCE = "女性高消费"
BAD_ROWS = (
    "customer_id,registered_at,name,province\n"
    "N0000001,2026-09-01 10:00:00,王芳,江苏省\n"
    "N0000002,not a date,李娜,Zhejiang\n"
    ",2026-09-02 11:00:00,no id,Shanghai\n"
    "N0000003,2026-09-03 12:00:00,张伟,上海市\n"
)


def chromium() -> str:
    """Debian's Chromium (installed here when missing and allowed: `make test` does too)."""
    if not Path(CHROMIUM).exists() and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "chromium", "fonts-noto-cjk"],
            check=False,
            capture_output=True,
        )
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium fonts-noto-cjk")
    return CHROMIUM


class Server:
    """The app under uvicorn in a thread of the test process, on a free loopback port."""

    def __init__(self, app) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    return make_shop(tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def server(shop):
    with Server(create_app(shop, sync_every=None)) as s:
        yield s


def expect(locator):
    """Playwright's assertions: they wait without evaluating strings in the page, which the
    app's Content-Security-Policy (no 'unsafe-eval') forbids, unlike wait_for_function."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def new_page(browser, server, *, lang: str | None = "en", locale: str = "zh-CN", size=(1366, 900)):
    """A page of its own context. The app is read in `lang` (the switch's cookie); None leaves
    the language to the app (a CNY shop's pages are in Chinese: test_app_browser_i18n)."""
    ctx = browser.new_context(
        viewport={"width": size[0], "height": size[1]}, accept_downloads=True, locale=locale
    )
    ctx.set_default_timeout(30_000)
    if lang:
        ctx.add_cookies([{"name": "archer_lang", "value": lang, "url": server.url}])
    p = ctx.new_page()
    p.base = server.url
    return p


def sign_in(p) -> None:
    p.goto(p.base + "/login")
    p.fill("#username", "alice")
    p.fill("#password", PASSWORD)
    p.click("button[type=submit]")
    p.wait_for_url(p.base + "/")


@pytest.fixture(scope="module")
def page(browser, server):
    """One signed-in tab shared by the tests (each still starts from its own page)."""
    SHOTS.mkdir(exist_ok=True)
    p = new_page(browser, server)
    sign_in(p)
    yield p
    p.context.close()


def saved(shop) -> str:
    """The audience the tests look at, saved here when the browser test has not yet."""
    if AUDIENCE not in {a["name"] for a in svc.list_audiences(shop)}:
        svc.save(shop, AUDIENCE, QUERY, user="alice")
    return AUDIENCE


def shot(page, name: str, full: bool = True) -> None:
    page.screenshot(path=str(SHOTS / f"app-{name}.png"), full_page=full)


def test_sign_in(browser, server):
    SHOTS.mkdir(exist_ok=True)
    page = new_page(browser, server)
    page.goto(page.base + "/customers")
    assert "/login?next=/customers" in page.url
    page.fill("#username", "alice")
    page.fill("#password", "wrong password")
    page.click("button[type=submit]")
    assert "Wrong user name or password" in page.inner_text("[role=alert]")
    page.fill("#password", PASSWORD)
    shot(page, "login", full=False)
    page.click("button[type=submit]")
    page.wait_for_url(page.base + "/customers")
    assert page.inner_text(".who") == "alice"
    page.context.close()


def test_overview_draws_every_chart(page):
    page.goto(page.base + "/")
    charts = page.locator("[data-chart]")
    assert charts.count() == 7
    expect(page.locator("[data-drawn]")).to_have_count(7, timeout=30_000)
    for i in range(7):
        c = charts.nth(i)
        box = c.bounding_box()
        assert box["width"] > 200 and box["height"] > 200
        assert c.locator("svg").count() == 1
        assert c.locator("svg path, svg rect, svg text").count() > 10  # something was drawn
    # the numbers are one click away
    table = page.locator("#funnel details.numbers table")
    assert not table.is_visible()
    page.click("#funnel details.numbers summary")
    assert table.is_visible() and "Registered" in table.inner_text()
    page.wait_for_timeout(600)  # let the animations finish before the picture
    shot(page, "overview")


def test_overview_fits_a_phone(browser, server, page):
    ctx = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    ctx.add_cookies(page.context.cookies())
    p = ctx.new_page()
    p.goto(server.url + "/")
    expect(p.locator("[data-drawn]")).to_have_count(7, timeout=30_000)
    width = p.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width}px wide on a 390px phone"
    p.wait_for_timeout(600)
    p.screenshot(path=str(SHOTS / "app-phone.png"), full_page=False)
    ctx.close()


# Each text of the funnel: wholly inside one of its pieces (and then white on colour) or wholly
# outside all of them, and within the chart. A label wider than its piece (the last, narrow
# step's "Bought again 5,663") is half white on white: cut off.
FUNNEL_LABELS = """() => {
  const svg = document.querySelector("#funnel svg");
  const box = svg.getBoundingClientRect();
  const pieces = [...svg.querySelectorAll("path")]
    .filter(p => (p.getAttribute("fill") || "none") !== "none");
  const inFill = (piece, x, y) =>
    piece.isPointInFill(new DOMPoint(x, y).matrixTransform(piece.getScreenCTM().inverse()));
  return [...svg.querySelectorAll("text")].map(t => {
    const r = t.getBoundingClientRect();
    const points = [[r.left + 1, r.top + 1], [r.right - 1, r.top + 1], [r.left + 1, r.bottom - 1],
                    [r.right - 1, r.bottom - 1], [(r.left + r.right) / 2, (r.top + r.bottom) / 2]];
    const within = r.left >= box.left && r.right <= box.right
      && r.top >= box.top && r.bottom <= box.bottom;
    const over = pieces.map(p => points.filter(([x, y]) => inFill(p, x, y)).length);
    return {text: t.textContent, within, cut: over.some(n => n > 0 && n < points.length)};
  });
}"""


@pytest.mark.parametrize("width", [1366, 390])
def test_every_funnel_label_is_whole(browser, server, page, width):
    ctx = browser.new_context(viewport={"width": width, "height": 900}, reduced_motion="reduce")
    ctx.add_cookies(page.context.cookies())
    p = ctx.new_page()
    p.goto(server.url + "/")
    expect(p.locator("#funnel [data-drawn]")).to_have_count(1)
    labels = p.evaluate(FUNNEL_LABELS)
    shown = " ".join(x["text"] for x in labels)
    for step in ("Visited", "Registered", "Added to cart", "Ordered", "Paid", "Bought again"):
        assert step in shown
    for x in labels:
        assert x["within"] and not x["cut"], (width, x)
    ctx.close()


def test_typing_an_audience_counts_it_live(page, shop):
    page.goto(page.base + "/audiences")
    page.click("#query")
    page.keyboard.type(QUERY, delay=15)
    want = count(shop, QUERY)
    expect(page.locator("#live-count")).to_have_text(f"{want['count']:,}", timeout=30_000)
    clauses = page.locator("#live-clauses li")
    assert clauses.count() == 2
    for li, c in zip(clauses.all(), want["clauses"], strict=True):
        assert li.inner_text().endswith(f"{c['count']:,}")
    shot(page, "audience-count")


def test_a_typo_is_marked_with_its_suggestion(page):
    page.goto(page.base + "/audiences")
    page.click("#query")
    page.keyboard.type('provnce = "Jiangsu"', delay=15)
    err = page.locator("#live-error")
    err.wait_for()
    assert err.locator("mark").inner_text() == "provnce"
    assert "unknown field 'provnce'" in err.inner_text()
    shot(page, "audience-error")
    err.locator("button.suggestion", has_text="province").click()
    page.wait_for_selector("#live-count")
    assert page.input_value("#query") == 'province = "Jiangsu"'


def test_save_the_audience_and_see_it(page, shop):
    page.goto(page.base + "/audiences")
    page.fill("#query", QUERY)
    page.fill("#name", AUDIENCE)
    page.fill("#description", f"women who spent 100+ {HOSTILE}")
    page.click("#audience-form button[type=submit]")
    page.wait_for_url("**/audiences/*")
    n = count(shop, QUERY)["count"]
    assert page.inner_text("h1") == AUDIENCE
    assert page.inner_text("#audience-count") == f"{n:,}"
    assert HOSTILE in page.inner_text("main")  # shown as text, not run
    assert page.locator("#members tbody tr").count() == min(n, 50)
    with page.expect_download() as d:
        page.click("text=Export CSV")
    rows = list(csv.DictReader(io.StringIO(Path(d.value.path()).read_text("utf-8-sig"))))
    assert len(rows) == n
    shot(page, "audience")


def test_a_customer_page_says_why_they_are_in(page, shop):
    member = svc.members_of(shop, saved(shop)).customer_id.iloc[0]
    page.goto(f"{page.base}/audiences/{AUDIENCE}")
    page.click(f"#members a[href='/customers/{member}']")
    page.wait_for_url(f"**/customers/{member}")
    why = page.locator("details.why.member", has_text=AUDIENCE)
    assert why.locator(".tag.in").count() == 1
    items = why.locator("ul.explain li.true")
    assert items.count() == 2
    text = why.inner_text()
    assert "net_spent >= 100" in text and "net_spent is" in text and "gender is f" in text
    assert page.locator("table.timeline tbody tr").count() > 0
    shot(page, "customer")


def test_search_customers_with_the_language(page, shop):
    saved(shop)
    page.goto(page.base + "/customers")
    page.fill("#q", f'in_audience("{AUDIENCE}") and age >= 30')
    page.click("form.query-form button[type=submit]")
    page.wait_for_selector("table.list tbody tr")
    assert "alone:" in page.inner_text("main")
    shot(page, "customers")


def test_upload_with_bad_rows_and_download_the_quarantine(page, tmp_path):
    f = tmp_path / "新会员.csv"
    f.write_text(BAD_ROWS, encoding="utf-8")
    page.goto(page.base + "/data")
    page.set_input_files("#file", str(f))
    page.select_option("#table", "customers")
    page.click("#import-form button[type=submit]")
    page.wait_for_selector("#import-result")
    result = page.inner_text("#import-result")
    assert "4 rows read" in result and "2 inserted" in result and "2 rejected" in result
    with page.expect_download() as d:
        page.click("#quarantine-link")
    rejected = list(csv.DictReader(io.StringIO(Path(d.value.path()).read_text("utf-8-sig"))))
    assert sorted(int(r["line"]) for r in rejected) == [3, 4]
    assert "新会员.csv" in page.locator("#imports tbody tr").first.inner_text()
    shot(page, "data")


def test_start_a_build_and_watch_it(page):
    page.goto(page.base + "/data")
    page.click("#build-button")
    page.wait_for_selector("#build-status[data-state=running]", state="attached", timeout=10_000)
    page.wait_for_selector(
        "#build-status[data-state=done], #build-status[data-state=failed]",
        state="attached",
        timeout=180_000,
    )
    text = page.inner_text("#build-text")
    assert re.match(r"Built [0-9,]+ customers as of \d{4}-\d\d-\d\d in ", text), text
    shot(page, "build")


def test_an_audience_history_grows_with_the_builds(page, shop):
    saved(shop)
    page.goto(page.base + "/data")
    page.click("#build-button")
    page.wait_for_selector("#build-status[data-state=done]", state="attached", timeout=180_000)
    page.goto(f"{page.base}/audiences/{AUDIENCE}")
    page.wait_for_selector("#history [data-drawn]")
    assert page.locator("#history svg path").count() > 3
    assert page.locator("#history details.numbers tbody tr").count() >= 1
    page.wait_for_timeout(600)
    shot(page, "audience-history")
