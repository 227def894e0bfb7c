"""Recorded AVL as feeds nobody tuned for write it: few columns, other clocks, bad fixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from telematics.avl import AvlError, plausible_positions, read_avl
from telematics.evaluate import evaluate_arrivals
from telematics.gtfs import read_feed
from tests.telematics.test_evaluate import _route_vehicles


def _recorded(wmata_dir: Path, vehicles: int = 2) -> pd.DataFrame:
    """The raw text rows of the D96 vehicles seen most."""
    avl = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    on_route = avl[avl["vehicle_id"].isin(_route_vehicles(wmata_dir, "D96"))]
    busiest = on_route["vehicle_id"].value_counts().index[:vehicles]  # the most pings (a real day's worth)
    return avl[avl["vehicle_id"].isin(busiest)].reset_index(drop=True)


def test_a_positions_only_file_with_any_clock_reads_the_same_times(wmata_dir: Path, tmp_path: Path) -> None:
    """Only vehicle, time and position are required; ISO 8601 at another offset, epoch seconds
    and epoch milliseconds give the same instants."""
    raw = _recorded(wmata_dir)
    iso = read_avl(_write(raw, tmp_path / "iso.csv"))
    utc = pd.to_datetime(raw["timestamp"], utc=True, format="ISO8601")
    variants = {
        "offset": utc.map(lambda t: t.astimezone(timezone(timedelta(hours=-5))).isoformat()),
        "epoch_s": (utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds().map(lambda s: f"{s:.0f}"),
        "epoch_ms": (utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds().map(lambda s: f"{s * 1000:.0f}"),
    }
    for name, stamps in variants.items():
        minimal = raw[["vehicle_id", "lat", "lon"]].assign(timestamp=stamps)
        got = read_avl(_write(minimal, tmp_path / f"{name}.csv"))
        np.testing.assert_allclose(np.sort(got["time_s"].to_numpy()), np.sort(iso["time_s"].to_numpy()), err_msg=name)
        assert (got["trip_id"] == "").all() and (got["route_id"] == "").all() and got["bearing"].isna().all()
    bad = raw[["vehicle_id", "lat", "lon"]].assign(timestamp=raw["timestamp"])
    bad.loc[6, "timestamp"] = "yesterday"
    with pytest.raises(AvlError, match=r"line 8 field timestamp: expected ISO 8601 or epoch seconds"):
        read_avl(_write(bad, tmp_path / "bad_time.csv"))
    with pytest.raises(AvlError, match=r"line 1 field lon: required column missing"):
        read_avl(_write(raw.drop(columns="lon"), tmp_path / "no_lon.csv"))


def test_fixes_the_live_service_would_not_apply_are_left_out(wmata_dir: Path, tmp_path: Path) -> None:
    """A fix at 0, 0 ("null island"), a jump no bus can make and a repeated fix are left out and
    counted; every other fix is kept as it was."""
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    clean = read_avl(_write(_recorded(wmata_dir), tmp_path / "avl.csv"))
    dirty = clean.copy()
    n = len(clean)
    jump = _teleport(dirty, n // 2)  # to its own farthest fix and back: no bus does that
    nulls = [k for k in (n // 5, 4 * n // 5) if abs(k - jump) > 2]
    dirty.loc[nulls, ["lat", "lon"]] = 0.0  # outside the service area
    dirty = pd.concat([dirty, dirty.iloc[[5, 6]]]).sort_values("time_s", kind="stable").reset_index(drop=True)
    kept = plausible_positions(dirty, feed)
    assert (kept.repeated, kept.area, kept.speed) == (2, len(nulls), 1)
    expected = clean.drop(index=[*nulls, jump]).reset_index(drop=True)
    pd.testing.assert_frame_equal(kept.avl, expected)
    assert plausible_positions(clean, feed).avl.shape == clean.shape


def _teleport(avl: pd.DataFrame, near: int) -> int:
    """Move one fix of the vehicle of row ``near`` (not its first nor last) to that vehicle's fix
    farthest from it, where reaching it from the fix before needs 3x the live speed limit."""
    rows = np.flatnonzero(avl["vehicle_id"] == avl["vehicle_id"].iloc[near])
    lat, lon, t = (avl[c].to_numpy(np.float64) for c in ("lat", "lon", "time_s"))
    for k in rows[len(rows) // 2:-1].tolist() + rows[1:len(rows) // 2].tolist():
        before = rows[np.searchsorted(rows, k) - 1]
        dist = np.hypot((lat[rows] - lat[before]) * 111_320.0,
                        (lon[rows] - lon[before]) * 111_320.0 * np.cos(np.radians(lat[before])))
        if dist.max() > 3 * 50.0 * (t[k] - t[before]) + 100.0:
            avl.loc[k, ["lat", "lon"]] = lat[rows[dist.argmax()]], lon[rows[dist.argmax()]]
            return int(k)
    raise AssertionError("no fix of that vehicle can be made an impossible jump")


def test_the_evaluation_scores_what_the_live_service_applies(wmata_dir: Path, tmp_path: Path) -> None:
    """Null-island fixes and repeated rows in a recorded day change no score (they collapsed
    within-windows from 0.90 to 0.32 when replayed as they came); a file without any trip id
    has nothing to score against and says so."""
    raw = _recorded(wmata_dir)
    dirty = raw.copy()
    rows = np.random.default_rng(1).choice(len(dirty), len(dirty) // 100 + 5, replace=False)
    dirty.loc[rows, ["lat", "lon"]] = "0"
    again = raw.drop(index=rows).iloc[:30]
    dirty = pd.concat([dirty, again])  # some rows again, at the end
    gtfs = wmata_dir / "wmata_gtfs.zip"
    clean_path = _write(raw.drop(index=rows), tmp_path / "clean.csv")
    got, want = (evaluate_arrivals(gtfs, path, assign=False) for path in (_write(dirty, tmp_path / "dirty.csv"),
                                                                           clean_path))
    assert got["positions_left_out"] == {"repeated": len(again), "area": len(rows), "speed": 0}
    assert want["positions_left_out"] == {"repeated": 0, "area": 0, "speed": 0}
    for key in ("predictions", "within_windows", "mae_s", "baselines"):
        assert got[key] == want[key], key
    with pytest.raises(AvlError, match=r"positions\.csv line 1 field trip_id: no recorded trip"):
        evaluate_arrivals(gtfs, _write(raw.drop(columns="trip_id"), tmp_path / "positions.csv"), assign=False)


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_a_timestamp_far_in_epoch_seconds_is_read_as_milliseconds(tmp_path: Path) -> None:
    when = datetime(2026, 2, 16, 15, 58, 2, tzinfo=UTC)
    rows = pd.DataFrame({"vehicle_id": ["a", "b"], "lat": ["38.9", "38.9"], "lon": ["-77.0", "-77.0"],
                         "timestamp": [f"{when.timestamp():.0f}", f"{when.timestamp() * 1000:.0f}"]})
    got = read_avl(_write(rows, tmp_path / "avl.csv"))
    assert got["time_s"].tolist() == [when.timestamp(), when.timestamp()]
