"""``its bench all``: every benchmark in sequence, a markdown table and PNG plots of the results.

Each benchmark runs as its own ``its bench ... --json`` process (so one cannot warm another's
caches) and its last stdout line is parsed.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

__all__ = ["BENCHES", "machine_description", "render_markdown", "run_all"]

BENCHES: dict[str, list[str]] = {
    "ingest": ["bench", "ingest", "--messages", "100000"],
    "api": ["bench", "api", "--duration", "5"],
    "video": ["bench", "video"],
    "congestion": ["bench", "congestion"],
}


def machine_description() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, Python {platform.python_version()}, {platform.system()}"


def run_all(env: dict[str, str] | None = None, timeout_s: float = 900.0) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_description(), "benches": {}}
    for name, argv in BENCHES.items():
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "its.app.cli", *argv, "--json"], env=env or dict(os.environ),
                              capture_output=True, text=True, timeout=timeout_s)
        lines = [ln for ln in done.stdout.strip().splitlines() if ln.startswith("{")]
        entry: dict[str, Any] = {"seconds": round(time.monotonic() - started, 1), "exit": done.returncode}
        if done.returncode == 0 and lines:
            entry["result"] = orjson.loads(lines[-1])
        else:
            entry["error"] = (done.stderr or done.stdout)[-800:]
        results["benches"][name] = entry
    return results


def render_markdown(results: dict[str, Any]) -> str:
    rows = ["| benchmark | figure | value | baseline (same run) | ratio |", "|---|---|---|---|---|"]
    b = results["benches"]
    r = b.get("ingest", {}).get("result")
    if r:
        rows.append(f"| ingest | collector msg/s ({r['messages']:,} QoS 1, lost {r['lost']}, dup {r['duplicates']}) | "
                    f"{r['collector_msgs_per_s']:,.0f} | bare paho {r['bare_client_msgs_per_s']:,.0f} | {r['ratio']} |")
    for e in (b.get("api", {}).get("result") or {}).get("endpoints", []):
        rows.append(f"| api | {e['endpoint']} req/s; p99 at {e['p99_ms_at_rps']:.0f} req/s = {e['p99_ms']} ms | "
                    f"{e['rps']:,.0f} | bare FastAPI {e['bare_rps']:,.0f} | {e['ratio']} |")
    r = b.get("video", {}).get("result")
    if r:
        rows.append(f"| video | pipeline fps at {r['resolution'][0]}x{r['resolution'][1]} "
                    f"({r['realtime_streams_per_core_at_15fps']} real-time 15 fps streams/core) | "
                    f"{r['pipeline_fps']:.0f} | {r.get('baseline', 'decode + MOG2')} "
                    f"{r.get('baseline_fps', r.get('decode_mog2_fps', 0)):.0f} | {r['ratio']} |")
        if "people_fps" in r:
            rows.append(f"| video | people counter fps at {r['people_resolution'][0]}x{r['people_resolution'][1]} | "
                        f"{r['people_fps']:.0f} | aim >= 15 | — |")
    r = b.get("congestion", {}).get("result")
    if r:
        rows.append(f"| congestion | full update of {r['edges']:,} edges, ms; route p99 ms | {r['update_ms']} ; "
                    f"{r['route_p99_ms']} | aim < 200 ; < 30 | — |")
    failed = [k for k, v in b.items() if "error" in v]
    text = "\n".join(rows) + f"\n\nMachine: {results['machine']}.\n"
    if failed:
        text += "\nFailed: " + ", ".join(failed) + "\n"
    return text


def plot(results: dict[str, Any], out: Path) -> list[Path]:
    """Bar charts of each ratio against its bare baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, ratios = [], []
    b = results["benches"]
    if b.get("ingest", {}).get("result"):
        labels.append("ingest")
        ratios.append(b["ingest"]["result"]["ratio"])
    for e in (b.get("api", {}).get("result") or {}).get("endpoints", []):
        labels.append(f"api:{e['endpoint']}")
        ratios.append(e["ratio"])
    if b.get("video", {}).get("result"):
        labels.append("video")
        ratios.append(b["video"]["result"]["ratio"])
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.barh(labels, ratios, color="#3b7dd8")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.axvline(0.7, color="#d83b3b", lw=0.8, ls="--", label="aim 0.7 (video 0.8)")
    ax.set_xlabel("throughput / bare baseline in the same run")
    ax.legend(loc="lower right")
    fig.tight_layout()
    path = out / "bench_ratios.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]
