"""Fixtures for the web tests: a live server in a thread and one headless Chromium per module."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("starlette", reason="the web extra is not installed")
pytest.importorskip("uvicorn", reason="the web extra is not installed")

from diffcap.web.server import App, make_server
from support.web_runs import CHROMIUM_ARGS, chromium_path


@pytest.fixture
def serve_app() -> Iterator[Callable[[App], str]]:
    """``url = serve_app(app, **make_server_kwargs)``: a real uvicorn server on a free loopback
    port, in a thread, until the test ends."""
    servers = []

    def start(app: App, **kwargs) -> str:
        server = make_server(app, "127.0.0.1", 0, **kwargs).start()
        servers.append(server)
        return server.url()

    yield start
    for s in servers:
        s.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium driven by Playwright (no browser download)."""
    exe = chromium_path()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium) — browser tests skipped")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    """A fresh page that records console errors and uncaught exceptions."""
    # bypass_csp: the pages' CSP would also block Playwright's string predicates, and the
    # escaping tests must prove the DOM is built safely without the CSP's help.
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    yield pg
    ctx.close()


@pytest.fixture
def strict_page(browser):
    """A page that keeps the pages' Content-Security-Policy and records its violations."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    pg.errors, pg.csp = [], []
    pg.on("pageerror", lambda exc: pg.errors.append(str(exc)))
    pg.on(
        "console",
        lambda m: pg.csp.append(m.text) if "Content Security Policy" in m.text else None,
    )
    yield pg
    ctx.close()
