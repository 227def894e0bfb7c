"""Fixtures of the control-centre tests: a live API server and a headless browser.

``browser`` is Chromium unless a test asks for others with
``@pytest.mark.parametrize("browser", BROWSERS, indirect=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from its.db import Database
from its.settings import Settings

from .browser import Console, PageOpener, launch
from .server import LiveServer, close_server, start_server


@pytest.fixture
def live_server(settings: Settings, db: Database) -> Iterator[LiveServer]:
    """The API with the control centre and no domain service (every panel must say "no data yet")."""
    server = start_server(settings, db)
    yield server
    close_server(server)


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Iterator[Browser]:
    with launch(getattr(request, "param", "chromium")) as b:
        yield b


@pytest.fixture
def open_page(browser: Browser) -> Iterator[PageOpener]:
    """``open_page(width, height)`` -> (page, console); its browser context closes after the test
    (before the server fixture stops, so no event stream is left open)."""
    contexts: list[BrowserContext] = []

    def opener(width: int, height: int) -> tuple[Page, Console]:
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        console = Console()
        console.attach(page)
        return page, console

    yield opener
    for context in contexts:
        context.close()
