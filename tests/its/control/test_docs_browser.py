"""Swagger UI (``/docs``) and ReDoc (``/redoc``) render the whole OpenAPI document in Chromium and
Firefox with every request to another host refused: the pages need nothing but the API, and
their Content-Security-Policy keeps the browser from asking other hosts at all."""

from __future__ import annotations

import pytest
from playwright.sync_api import Route, expect

from .browser import BROWSERS, PageOpener
from .server import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("browser", BROWSERS, indirect=True)]


def test_docs_render_without_other_hosts(live_server: LiveServer, open_page: PageOpener) -> None:
    doc = live_server.app.openapi()  # type: ignore[attr-defined]
    operation_ids = {op["operationId"] for item in doc["paths"].values() for op in item.values()}
    page, console = open_page(1280, 900)
    foreign: list[str] = []

    def only_local(route: Route) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    page.goto(live_server.url + "/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    shown = set(page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)"))
    assert shown == set(doc["paths"]), set(doc["paths"]) ^ shown  # every path, as a section of its tag(s)
    page.goto(live_server.url + "/redoc")
    sections = page.locator("[data-section-id*='operation/']")
    expect(sections.first).to_be_attached(timeout=20_000)
    ids = {s.rsplit("operation/", 1)[1] for s in sections.evaluate_all("els => els.map(e => e.dataset.sectionId)")}
    assert ids == operation_ids, ids ^ operation_ids
    assert not foreign, f"the docs pages asked other hosts: {foreign}"
    # ReDoc's vendor logo (an <img> that hides itself on error) is refused by the page's CSP
    # (Chromium words it "Content Security Policy", Firefox "The page's settings blocked ...")
    errors = [e for e in console.errors if "cdn.redoc.ly" not in e]
    assert not errors, errors
