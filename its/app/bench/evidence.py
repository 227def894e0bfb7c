"""Plots of the accuracy evidence for the README: arrival MAE by horizon against the
baselines, parking forecast MAE by horizon against its baselines (from ``its eval ... --json``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

__all__ = ["plot_accuracy", "run_eval"]


def run_eval(argv: list[str]) -> dict[str, Any]:
    """Run ``its eval ... --json`` in a child process and return its last-line JSON."""
    done = subprocess.run([sys.executable, "-m", "its.app.cli", "eval", *argv, "--json"], capture_output=True, text=True,
                          check=True)
    return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))


def plot_accuracy(arrivals: dict[str, Any], parking: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    buckets = ["0-3", "3-6", "6-12", "12-30"]
    series = {"platform": arrivals["mae_s"], **{k: v["mae_s"] for k, v in arrivals["baselines"].items()}}
    x = np.arange(len(buckets))
    w = 0.8 / len(series)
    for i, (name, mae) in enumerate(series.items()):
        a.bar(x + i * w, [mae[k] for k in buckets], w, label=name)
    a.set_xticks(x + w * (len(series) - 1) / 2, [f"{k} min" for k in buckets])
    a.set_ylabel("MAE, s")
    a.set_title(f"Arrival prediction error by horizon (within windows {arrivals['within_windows']:.3f})")
    a.legend()
    horizons = ["15", "30", "60"]
    series = {"platform": parking["mae_free"], **parking["baselines"]}
    x = np.arange(len(horizons))
    w = 0.8 / len(series)
    for i, (name, mae) in enumerate(series.items()):
        b.bar(x + i * w, [mae[k] for k in horizons], w, label=name)
    b.set_xticks(x + w * (len(series) - 1) / 2, [f"+{h} min" for h in horizons])
    b.set_ylabel("MAE, free spaces")
    b.set_title("Parking forecast error (Birmingham)")
    b.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
