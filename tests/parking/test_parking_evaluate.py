"""Walk-forward evaluation on the real Birmingham history, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from parking.evaluate import evaluate_history_file, nearest_reading


def test_nearest_reading_respects_key_and_tolerance() -> None:
    keys = np.array([0, 0, 0, 1], dtype=np.int64)
    times = np.array([0, 1800, 3600, 1000], dtype=np.int64)
    found = nearest_reading(keys, times, np.array([0, 0, 0, 1], dtype=np.int64),
                            np.array([1700, 2500, 4300, 1500], dtype=np.int64), 600)
    assert found.tolist() == [1, -1, -1, 3]


def test_model_beats_both_baselines_at_60_min(birmingham_csv: Path) -> None:
    result = evaluate_history_file(birmingham_csv)
    assert result.sites == 30
    assert result.cleaned.as_dict() == {"clamped": 385, "duplicates": 216, "over_capacity": 373, "negative": 12}
    model = result.mae_free["60"]
    best = min(result.baselines["persistence"]["60"] or np.inf, result.baselines["seasonal"]["60"] or np.inf)
    assert model is not None and model <= 0.8 * best
    assert result.counts["60"] > 20_000
    assert result.forecasts == sum(result.counts[h] for h in ("15", "30", "60"))


def test_eval_uses_only_the_past(birmingham_csv: Path, tmp_path: Path) -> None:
    """Changing the last day must not change any forecast made before it."""
    frame = pd.read_csv(birmingham_csv, dtype=str)
    on_last = frame["timestamp"].str[:10] == frame["timestamp"].str[:10].max()
    corrupted = frame.copy()
    corrupted.loc[on_last, "occupied"] = "0"
    path = tmp_path / "corrupted.csv"
    corrupted.to_csv(path, index=False)
    a, b = evaluate_history_file(birmingham_csv), evaluate_history_file(path)
    assert a.points is not None and b.points is not None
    cutoff = pd.Timestamp(frame.loc[on_last, "timestamp"].min()).tz_convert("UTC") - pd.Timedelta(hours=2)
    before_a = a.points[a.points["time"] < cutoff].reset_index(drop=True)
    before_b = b.points[b.points["time"] < cutoff].reset_index(drop=True)
    assert len(before_a) > 50_000
    pd.testing.assert_frame_equal(before_a, before_b)
    assert not a.points.equals(b.points)  # the last day itself is scored and did change


def test_cli_prints_one_json_object_last(birmingham_csv: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "its.cli", "eval", "parking", "--history", str(birmingham_csv), "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(last) == {"sites", "forecasts", "mae_free", "baselines", "cleaned"}
    assert set(last["mae_free"]) == {"15", "30", "60"}
    assert set(last["baselines"]) == {"persistence", "seasonal"}
    assert last["cleaned"]["clamped"] == 385 and last["cleaned"]["duplicates"] == 216
    assert "60 min" in out.stdout


def test_cli_names_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "h.csv"
    bad.write_text("site_id,timestamp,capacity,occupied\nA,yesterday,10,1\n")
    out = subprocess.run(
        [sys.executable, "-m", "its.cli", "eval", "parking", "--history", str(bad)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 2
    assert "line 2" in out.stderr and "timestamp" in out.stderr
