"""Headless Debian Chromium driven by Playwright, with console errors collected per page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from .server import DISPATCHER

CHROMIUM = os.environ.get("ITS_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "control"


@dataclass
class Console:
    """Console errors and uncaught exceptions of a page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.errors.append(f"console: {msg.text} @ {msg.location.get('url')}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))


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


PageOpener = Callable[[int, int], tuple[Page, "Console"]]


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
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
