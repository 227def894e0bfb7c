"""Debian's ``firefox-esr`` behind Playwright's WebDriver BiDi client (``channel="moz-firefox"``).

Playwright drives stock Firefox over WebDriver BiDi, the W3C protocol Firefox implements
natively (``--remote-debugging-port``), so no patched browser build is needed. Playwright's
client follows Firefox's release channel, and while setting up every browser context it sends
``emulation.setMediaFeaturesOverride`` (prefers-color-scheme), which the ESR does not implement
yet (it answers ``unknown command`` and the context fails to open).

This module is the executable Playwright launches in Firefox's place (through a two-line shell
wrapper, :func:`wrapper_script`): it starts the real Firefox with the same arguments, and when
Firefox prints ``WebDriver BiDi listening on ws://...`` it puts a WebSocket relay in between
and prints the relay's address instead. The relay passes every message through unchanged,
except that it answers the commands listed in :data:`ABSORBED` with an empty success (the
tests never emulate a colour scheme). Everything else — navigation, input, screenshots,
console and page errors — is Firefox's own BiDi implementation.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import re
import signal
import stat
import sys
from pathlib import Path

import orjson
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

FIREFOX = os.environ.get("ITS_FIREFOX", "/usr/bin/firefox-esr")
ABSORBED = frozenset({"emulation.setMediaFeaturesOverride"})
"""BiDi commands the ESR lacks and Playwright sends unasked; answered as no-ops."""
_LISTENING = re.compile(r"WebDriver BiDi listening on (ws://[^\s]+)")


async def _relay(client: ServerConnection, upstream_url: str) -> None:
    """Pump one Playwright connection to Firefox and back, absorbing the :data:`ABSORBED` commands."""
    path = client.request.path if client.request is not None else "/session"
    async with connect(upstream_url.rstrip("/") + path, max_size=None, ping_interval=None) as upstream:

        async def to_firefox() -> None:
            async for raw in client:
                try:
                    message = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    message = None
                if isinstance(message, dict) and message.get("method") in ABSORBED:
                    await client.send(orjson.dumps({"type": "success", "id": message.get("id"), "result": {}}).decode())
                    continue
                await upstream.send(raw)

        async def to_playwright() -> None:
            async for raw in upstream:
                await client.send(raw)

        tasks = [asyncio.create_task(to_firefox()), asyncio.create_task(to_playwright())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task


async def run(args: list[str]) -> int:
    """Start Firefox with ``args``, relay its BiDi endpoint, return Firefox's exit code."""
    firefox = await asyncio.create_subprocess_exec(FIREFOX, *args, stdout=None, stderr=asyncio.subprocess.PIPE)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, firefox.terminate)
    server = None
    assert firefox.stderr is not None
    try:
        async for line in firefox.stderr:
            text = line.decode(errors="replace")
            match = _LISTENING.search(text) if server is None else None
            if match:
                upstream = match.group(1)
                server = await serve(functools.partial(_relay, upstream_url=upstream), "127.0.0.1", 0,
                                     max_size=None, ping_interval=None)
                port = next(iter(server.sockets)).getsockname()[1]
                text = text.replace(upstream, f"ws://127.0.0.1:{port}")
            sys.stderr.write(text)
            sys.stderr.flush()
        return await firefox.wait()
    finally:
        if firefox.returncode is None:
            firefox.kill()
            await firefox.wait()
        if server is not None:
            server.close()


def wrapper_script(directory: Path) -> Path:
    """An executable that runs this relay with this interpreter (Playwright's ``executable_path``)."""
    path = directory / "firefox-bidi"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


if __name__ == "__main__":
    sys.exit(asyncio.run(run(sys.argv[1:])))
