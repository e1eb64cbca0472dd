"""Clickjacking in a real browser (issue 11, item 7): a page of another origin on the same
site frames the signed-in /audiences page, and Chromium must refuse to show it. Debian's
Chromium through Playwright, the app under uvicorn on loopback, as in test_web_ui.py."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_web_pages import PAGES, make_shop
from test_web_ui import Server, new_page, sign_in

pytestmark = pytest.mark.xdist_group("browser")


class Evil:
    """Another site's page, served by a plain HTTP server on another loopback port."""

    def __init__(self, body: bytes) -> None:
        class Page(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/frame.html"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Evil:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from archer.web import create_app

    shop = make_shop(tmp_path_factory.mktemp("framed"), customers=40)
    with Server(create_app(shop, sync_every=None)) as s:
        yield s


def test_another_page_cannot_frame_the_app(browser, server):
    page = new_page(browser, server)
    sign_in(page)
    page.goto(server.url + "/audiences")
    assert page.locator(".who").inner_text() == "alice"  # signed in: the page shows itself
    # A real page on the same host, another port: same site, so the session cookie goes along.
    html = (
        f'<!doctype html><title>evil</title><iframe id="f" src="{server.url}/audiences"></iframe>'
    )
    with Evil(html.encode()) as evil:
        page.goto(evil.url)  # waits for the frame to load too
        child = next(f for f in page.frames if f is not page.main_frame)
        child.wait_for_load_state("load")
        assert child.url == "chrome-error://chromewebdata/"  # refused: Chromium's error page
        assert page.frame_locator("#f").locator(".who").count() == 0
    # The server answered the same request: it is the browser that refused, as told.
    r = page.request.get(server.url + "/audiences")
    assert r.ok and r.headers["x-frame-options"] == "DENY"
    page.context.close()


def test_the_pages_work_under_the_content_security_policy(browser, server):
    page = new_page(browser, server)
    sign_in(page)
    violations = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(server.url + "/")
    page.wait_for_selector("[data-chart][data-drawn=true] svg")
    drawn = page.locator("[data-chart][data-drawn=true]").count()
    assert drawn == page.locator("[data-chart]").count() > 0  # ECharts draws every chart
    for path in [*PAGES[1:], "/docs"]:  # and the API reference, whose one style is hashed
        page.goto(server.url + path)
        page.wait_for_load_state("load")
    # The audience editor counts live through fetch, with its CSRF token from a <meta>.
    page.goto(server.url + "/audiences")
    page.fill("#query", "net_spent > 0")
    page.wait_for_selector("#live-count")
    assert violations == []
    page.context.close()
