"""Cleaning of occupancy readings on the real Birmingham file and on small cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parking.cleaning import (
    CounterTracker,
    HistoryFormatError,
    clamp_occupancy,
    clean_history,
    correct_counter_drift,
    read_history_csv,
)


def test_known_faults_of_birmingham_are_counted(birmingham_csv: Path) -> None:
    from tests.standins import BIRMINGHAM_FAULTS

    raw = read_history_csv(birmingham_csv)
    real = "shared" in str(birmingham_csv.resolve())  # else the stand-in with its written faults
    rows, (over, negative, dups) = (35_717, (373, 12, 216)) if real else (len(raw), BIRMINGHAM_FAULTS)
    assert len(raw) == rows
    cleaned, report = clean_history(raw)
    assert (report.over_capacity, report.negative, report.duplicates) == (over, negative, dups)
    assert report.clamped == over + negative
    assert len(cleaned) == rows - dups
    assert (cleaned["occupied"] >= 0).all()
    assert (cleaned["occupied"] <= cleaned["capacity"]).all()
    assert not cleaned.duplicated(["site_id", "time"]).any()
    assert (cleaned["free"] == cleaned["capacity"] - cleaned["occupied"]).all()


def test_local_time_comes_from_the_timestamp_offset(birmingham_csv: Path) -> None:
    raw = read_history_csv(birmingham_csv)
    first = raw.iloc[0]  # real: 2016-10-04T07:59:42+0100
    text = birmingham_csv.read_text().splitlines()[1].split(",")[1]
    hh, mm, ss = int(text[11:13]), int(text[14:16]), int(text[17:19])
    assert text.startswith("2016-10-04T") and text.endswith("+0100")
    assert first["time"].hour == hh - 1
    assert first["local_min"] == pytest.approx(hh * 60 + mm + ss / 60)
    assert first["weekday"] == 1  # Tuesday


def test_clamp_flags_each_side() -> None:
    occ, over, neg = clamp_occupancy([-3, 5, 12], [10, 10, 10])
    assert occ.tolist() == [0, 5, 10]
    assert over.tolist() == [False, False, True]
    assert neg.tolist() == [True, False, False]


def test_bad_file_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "site_id,timestamp,capacity,occupied\nA,2016-10-04T07:59:42+0100,10,3\nA,2016-10-04T08:29:42+0100,10,x\n"
    )
    with pytest.raises(HistoryFormatError, match=r"bad.csv: line 3: field 'occupied'"):
        read_history_csv(path)
    path.write_text("site_id,timestamp,occupied\n")
    with pytest.raises(HistoryFormatError, match="missing column"):
        read_history_csv(path)


def test_drift_is_corrected_against_absolute_readings() -> None:
    # true occupancy rises by 1 per message; the counter misses every 5th entry
    true = np.arange(1, 101, dtype=float)
    flows = np.ones(100)
    flows[::5] = 0
    t = np.arange(100, dtype=float) * 60
    raw = np.cumsum(flows)
    abs_t = t[[0, 49, 99]]
    abs_v = true[[0, 49, 99]]
    fixed = correct_counter_drift(t, flows, abs_t, abs_v)
    assert np.abs(raw - true).max() >= 19
    assert np.abs(fixed - true).max() <= 1.0
    assert fixed[[0, 49, 99]] == pytest.approx(abs_v)


def test_counter_tracker_resets_on_absolute() -> None:
    tracker = CounterTracker()
    tracker.absolute(10)
    tracker.delta(5, 1)
    assert tracker.occupied == 14
    drift = tracker.absolute(12)
    assert drift == -2
    assert tracker.drift_corrections == 1
