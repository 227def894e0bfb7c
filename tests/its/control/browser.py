"""Headless Debian Chromium and Firefox ESR driven by Playwright, with console errors collected per page.

Chromium is driven over CDP (Playwright's usual path); Firefox over WebDriver BiDi, the W3C
protocol stock Firefox speaks (Playwright's ``moz-firefox`` channel, through
:mod:`tests.its.app.control.firefox_bidi`), so both are the distribution's own builds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from .firefox_bidi import FIREFOX, wrapper_script
from .server import DISPATCHER

CHROMIUM = os.environ.get("ITS_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FIREFOX_PREFS: dict[str, str | float | bool] = {
    # no network chatter of its own in a test (updates, telemetry, captive portal, safe browsing)
    "app.update.enabled": False, "browser.safebrowsing.update.enabled": False,
    "network.captive-portal-service.enabled": False, "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.enabled": False, "browser.shell.checkDefaultBrowser": False,
}
BROWSERS = ("chromium", "firefox")
PLAYWRIGHT_STYLE_HASH = "sha256-YjaKGiklmzC6wjXA513HAMmzus8VE61XCOT+SmwNZWA="
"""CSP hash of ``<style>body {}</style>``, which Playwright's screenshot briefly inserts in Firefox
to sync animations; the page's CSP (``style-src 'self'``) rightly refuses it and Firefox reports
that as a page error. It is the test harness's, not the page's: :class:`Console` ignores it."""
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "control"


@dataclass
class Console:
    """Console errors and uncaught exceptions of a page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.errors.append(f"console: {msg.text} @ {msg.location.get('url')}")

        def on_error(exc: Exception) -> None:
            if PLAYWRIGHT_STYLE_HASH not in str(exc):
                self.errors.append(f"pageerror: {exc}")

        page.on("console", on_console)
        page.on("pageerror", on_error)


@contextmanager
def launch_chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless; skips the test when it is not installed."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} not found: run `make browser` (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


@contextmanager
def launch_firefox() -> Iterator[Browser]:
    """Debian's Firefox ESR, headless, over WebDriver BiDi; skips the test when it is not installed."""
    if shutil.which(FIREFOX) is None:
        pytest.skip(f"{FIREFOX} not found: run `make browser` (apt-get install firefox-esr)")
    with tempfile.TemporaryDirectory(prefix="its-firefox-") as tmp, sync_playwright() as pw:
        b = pw.firefox.launch(channel="moz-firefox", executable_path=wrapper_script(Path(tmp)), headless=True,
                              firefox_user_prefs=FIREFOX_PREFS)
        try:
            yield b
        finally:
            b.close()


def launch(name: str) -> AbstractContextManager[Browser]:
    """``launch("chromium")`` or ``launch("firefox")``."""
    return {"chromium": launch_chromium, "firefox": launch_firefox}[name]()


PageOpener = Callable[[int, int], tuple[Page, "Console"]]


def browser_name(page: Page) -> str:
    """``chromium`` or ``firefox``: the engine a page runs in."""
    return page.context.browser.browser_type.name if page.context.browser is not None else "chromium"


def screenshot(page: Page, name: str) -> Path:
    """Save ``test-artifacts/control/<name>.png`` (``<name>-firefox.png`` from Firefox)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    suffix = "" if browser_name(page) == "chromium" else f"-{browser_name(page)}"
    path = ARTIFACTS / f"{name}{suffix}.png"
    page.screenshot(path=str(path))
    return path


def log_in(page: Page, base_url: str, user: tuple[str, str] = DISPATCHER) -> None:
    """Go to /control, get sent to the login page, sign in and land on the control centre."""
    page.goto(f"{base_url}/control")
    page.wait_for_url(f"{base_url}/control/login")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("#login-button")
    page.wait_for_url(f"{base_url}/control")
    page.wait_for_function("() => document.getElementById('feed-status').textContent.startsWith('last update')")
