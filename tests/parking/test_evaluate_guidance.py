"""Replay of parking guidance on the real Birmingham history, through the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parking.cleaning import parse_history, read_history_csv
from parking.evaluate_guidance import _request_times, evaluate_guidance
from parking.sites import read_sites

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"


def test_cli_on_birmingham_without_positions(birmingham_csv: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "its.app.cli", "eval", "guidance", "--history", str(birmingham_csv), "--json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"success", "requests", "holdout", "calibration"} <= set(last)
    assert set(last["success"]) == {"model", "naive"} and not last["positions"] and last["sites"] == 30
    # one request per request time (every 15 min) and site with a current reading
    assert last["requests"] > 25_000
    assert last["success"]["model"] >= 0.95
    # the naive choice here is the emptiest of 30 car parks, which never fills within 15 min:
    # the model must not do measurably worse
    assert last["success"]["model"] >= last["success"]["naive"] - 0.001
    hold = last["holdout"]
    assert hold["from"] == "2016-12-06" and 0 < hold["requests"] < last["requests"]
    assert hold["success"]["model"] >= 0.95
    # the chance of a space is calibrated: sites given >= 99 % had one, those under 50 % mostly not
    bins = {b["p_low"]: b for b in last["calibration"]}
    assert bins[0.99]["n"] > 10_000 and bins[0.99]["observed"] >= 0.99
    assert bins[0.0]["n"] > 50 and bins[0.0]["observed"] < 0.6
    assert "free space on arrival" in out.stdout


def test_with_positions_the_model_sends_drivers_nearer(birmingham_csv: Path) -> None:
    """With (demo) positions a driver bound for a car park is sent to it when it will very likely
    have room, instead of across town to the emptiest one; success stays above 95 %."""
    sites = [s for s in read_sites(DEMO) if s.site_id.startswith(("BHM", "NIA", "Others", "Bull", "Broad", "Shop"))]
    result = evaluate_guidance(read_history_csv(birmingham_csv), sites, arrive_in_min=30, radius_m=1000)
    assert result.positions and result.sites == 30
    assert result.success["model"] is not None and result.success["model"] >= 0.95
    assert result.distance_m["model"] is not None and result.distance_m["naive"] is not None
    assert result.distance_m["model"] < 0.5 * result.distance_m["naive"]
    assert result.differs is not None and result.differs > 0.3


# --- histories and sites files a new city could hand over -----------------------------------




def _first_days(history: pd.DataFrame, n: int) -> pd.DataFrame:
    first = np.sort(history["local_date"].unique())[:n]
    return history[history["local_date"].isin(first)].reset_index(drop=True)


def test_histories_without_a_request_give_a_valid_empty_result(birmingham_csv: Path) -> None:
    """Too short a history (2 and 8 days), a single site, no readings at all: nothing counted, shares
    None, a note saying why, JSON as usual (these used to end in a TypeError)."""
    history = read_history_csv(birmingham_csv)
    first = history["site_id"].iloc[0]
    cases = {"2 days": (_first_days(history, 2), "7 days of history"),
             "8 days": (_first_days(history, 8), "errors of its forecasts on earlier days"),
             "one site": (history[history["site_id"] == first], "has 1 site"),
             "no readings": (parse_history("site_id,timestamp,capacity,occupied\n", "f"), "no readings")}
    for name, (frame, why) in cases.items():
        result = evaluate_guidance(frame)
        assert result.requests == 0 and result.success == {"model": None, "naive": None}, name
        assert any(why in n for n in result.notes), (name, result.notes)
        out = result.as_json()
        assert json.loads(json.dumps(out)) == out and out["holdout"]["requests"] == 0
        assert "note: no" in result.summary()


def test_request_times_are_those_with_a_current_reading() -> None:
    """Exactly the multiples of the step from the first reading to the last that have a reading at
    most the stale age before them; a stray reading years away costs nothing."""
    rng = np.random.default_rng(1)
    times = np.sort(rng.integers(0, 20 * 86400, 300)).astype(np.int64)
    step, age = 900, 3600
    brute = np.arange(-(-times.min() // step) * step, times.max() + 1, step)
    prev = np.searchsorted(times, brute, side="right") - 1
    expected = brute[(prev >= 0) & (brute - times[np.clip(prev, 0, None)] <= age)]
    np.testing.assert_array_equal(_request_times(times, step, age), expected)
    stray = np.append(times, times[-1] + 30 * 365 * 86400)
    assert _request_times(stray, 60, age).size < 2 * _request_times(times, 60, age).size


def test_holdout_longer_than_the_history_starts_on_its_first_day(birmingham_csv: Path) -> None:
    history = _first_days(read_history_csv(birmingham_csv), 20)
    result = evaluate_guidance(history, holdout_days=1000)
    assert result.holdout["from"] == str(np.sort(history["local_date"].unique())[0])[:10]
    assert result.requests > 0 and result.holdout["requests"] == result.requests


def test_sites_file_missing_some_or_with_extra_sites(birmingham_csv: Path) -> None:
    """Sites of the history without a position are left out and counted, as are positions without
    readings; a sites file matching no site of the history is refused, naming ids of both."""
    history = _first_days(read_history_csv(birmingham_csv), 12)
    demo = read_sites(DEMO)
    replay = [s for s in demo if s.site_id in set(history["site_id"])]
    others = [s for s in demo if s.site_id not in set(history["site_id"])]
    half = evaluate_guidance(history, replay[:10] + others)
    assert half.sites == 10 and half.without_position == history["site_id"].nunique() - 10
    assert half.positions_without_history == len(others) and half.requests > 0
    assert "left out" in half.summary()
    with pytest.raises(ValueError, match=r"no site of the sites file .* has readings in the history"):
        evaluate_guidance(history, others)


@pytest.mark.parametrize(("kwargs", "match"), [({"arrive_in_min": 61}, "0-60"), ({"arrive_in_min": -1}, "0-60"),
                                              ({"every_min": 0}, "every_min"), ({"radius_m": -5}, "radius_m")])
def test_arguments_out_of_range_are_refused(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate_guidance(parse_history("site_id,timestamp,capacity,occupied\n", "f"), **kwargs)  # type: ignore[arg-type]


def test_arrival_now_and_in_an_hour(birmingham_csv: Path) -> None:
    """``arrive_in_min`` 0 and 60 (the range's ends) are replayed."""
    history = _first_days(read_history_csv(birmingham_csv), 20)
    for arrive in (0.0, 60.0):
        result = evaluate_guidance(history, arrive_in_min=arrive)
        assert result.requests > 0 and result.success["model"] is not None and result.arrive_in_min == arrive


def test_cli_bad_sites_file_and_options(birmingham_csv: Path, tmp_path: Path) -> None:
    """A sites file with a bad geometry or matching no site, a negative radius: exit 2, one clear line."""
    doc = json.loads(DEMO.read_text())
    doc["features"][3]["geometry"] = {"type": "Point", "coordinates": [200, "x"]}
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(doc))
    only_cairns = tmp_path / "cairns.geojson"
    only_cairns.write_text(json.dumps({"type": "FeatureCollection", "features": [
        f for f in json.loads(DEMO.read_text())["features"] if f["properties"]["id"].startswith("CNS")]}))
    for args, message in (((("--sites", str(bad))), "feature 4"),
                          (("--sites", str(only_cairns)), "no site of the sites file"),
                          (("--radius-m", "-5"), "radius")):
        out = subprocess.run([sys.executable, "-m", "its.app.cli", "eval", "guidance", "--history", str(birmingham_csv),
                              *args], capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 2 and "Traceback" not in out.stderr and message in out.stderr, out.stderr
