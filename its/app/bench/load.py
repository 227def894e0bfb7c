"""HTTP load from a separate process: closed-loop throughput and paced latency.

Uses keep-alive ``http.client`` connections, one thread each, in a child process so the
server under test never shares an interpreter (or GIL) with its load.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import threading
import time
from typing import Any

import numpy as np

__all__ = ["measure"]


def _worker(host: str, port: int, paths: list[str], headers: dict[str, str], duration_s: float,
            interval_s: float, out: list[float], errors: list[int], start_at: float) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=10)
    i = 0
    while time.perf_counter() < start_at:
        time.sleep(0.001)
    next_at = start_at
    end = start_at + duration_s
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if interval_s:
            if now < next_at:
                time.sleep(next_at - now)
            sent = next_at  # open loop: latency counts from the scheduled send time
            next_at += interval_s
        else:
            sent = time.perf_counter()
        path = paths[i % len(paths)]
        i += 1
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status >= 400 and resp.status != 404:
                errors.append(resp.status)
        except (OSError, http.client.HTTPException):
            errors.append(-1)
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            continue
        out.append(time.perf_counter() - sent)
    conn.close()


def _run(host: str, port: int, paths: list[str], headers: dict[str, str], connections: int,
         duration_s: float, rate: float | None, queue: Any) -> None:
    lat: list[list[float]] = [[] for _ in range(connections)]
    errs: list[list[int]] = [[] for _ in range(connections)]
    interval = connections / rate if rate else 0.0
    start_at = time.perf_counter() + 0.2
    threads = [threading.Thread(target=_worker, args=(host, port, paths, headers, duration_s, interval, lat[k],
                                                      errs[k], start_at + (interval * k / connections)))
               for k in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queue.put(([x for part in lat for x in part], sum(len(e) for e in errs)))


def measure(host: str, port: int, paths: list[str], *, headers: dict[str, str] | None = None,
            connections: int = 8, duration_s: float = 5.0, rate: float | None = None) -> dict[str, float]:
    """Load ``paths`` round-robin from a child process.

    Parameters
    ----------
    rate : float, optional
        Requests per second in total (open loop, paced); ``None`` sends as fast as the server answers.

    Returns
    -------
    dict
        ``rps`` achieved, ``p50_ms``, ``p99_ms`` latency, ``errors`` count.
    """
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(host, port, paths, headers or {}, connections, duration_s, rate, queue))
    proc.start()
    latencies, errors = queue.get(timeout=duration_s + 60)
    proc.join(10)
    arr = np.asarray(latencies) * 1000.0
    return {
        "rps": round(len(arr) / duration_s, 1),
        "p50_ms": round(float(np.percentile(arr, 50)), 2) if arr.size else float("nan"),
        "p99_ms": round(float(np.percentile(arr, 99)), 2) if arr.size else float("nan"),
        "errors": int(errors),
    }
