"""Cleaning of occupancy readings on the real Birmingham file and on small cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parking.cleaning import (
    MAX_SPACES,
    CounterTracker,
    HistoryFormatError,
    clamp_occupancy,
    clean_history,
    correct_counter_drift,
    parse_history,
    read_history_csv,
)
from tests.parking.conftest import HOSTILE, write_hostile


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


# --- histories as a new city could hand them over -------------------------------------------



HEADER = "site_id,timestamp,capacity,occupied\n"
#: Variants whose timestamps carry no UTC offset: read only with the zone of the readings.
NO_OFFSET = ("epoch_s", "epoch_ms", "naive_local")


def _same_readings(a: pd.DataFrame, b: pd.DataFrame, local: bool = True) -> None:
    """Equal readings whatever the row order and line numbers (local fields too unless ``local`` is False)."""
    cols = ["site_id", "time", "capacity", "occupied"] + (["local_min", "weekday", "local_date"] if local else [])
    key = ["site_id", "time", "occupied", "capacity"]
    left = a[cols].sort_values(key, kind="stable").reset_index(drop=True)
    right = b[cols].sort_values(key, kind="stable").reset_index(drop=True)
    pd.testing.assert_frame_equal(left, right, check_dtype=False, check_index_type=False)


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_layouts_give_the_same_readings(birmingham_csv: Path, tmp_path: Path, kind: str) -> None:
    """Another offset, epoch or naive local times (with the zone given), shuffled or duplicated rows,
    BOM + CRLF, extra or reordered columns, header case and spaces, semicolons, blank lines: the
    same readings as the original (Birmingham, ISO 8601 with offsets). Offsets other than the
    recorded ones keep the instants; the zone of the readings (``timezone``) gives back its local times."""
    original = read_history_csv(birmingham_csv)
    path = write_hostile(birmingham_csv, kind, tmp_path / f"{kind}.csv")
    if kind in NO_OFFSET:
        with pytest.raises(HistoryFormatError, match=r"line 2: field 'timestamp': .*no UTC offset.*--timezone"):
            read_history_csv(path)
    zone = "Europe/London" if kind in (*NO_OFFSET, "utc_z", "plus0530") else None
    got = read_history_csv(path, timezone=zone)
    if kind == "duplicated":
        assert len(got) == 2 * len(original)
        got = got.drop_duplicates(["site_id", "time", "capacity", "occupied"])
        original = original.drop_duplicates(["site_id", "time", "capacity", "occupied"])
    _same_readings(got, original)
    if kind in ("utc_z", "plus0530"):  # without a zone: the same instants, local times of the given offset
        _same_readings(read_history_csv(path), original, local=False)


def test_site_ids_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(HEADER + "007,2016-10-04T07:59:42+0100,10,3\n1e3,2016-10-04T07:59:42+0100,10,3\n")
    assert read_history_csv(path)["site_id"].tolist() == ["007", "1e3"]


def test_timestamp_forms(tmp_path: Path) -> None:
    """ISO 8601 offsets as +hh:mm, +hhmm, +hh and Z, fractional seconds; naive local times in a zone
    with clocks changing (repeated hour: the first; skipped hour: moved forward)."""
    text = HEADER + "".join(f"A,{ts},10,1\n" for ts in (
        "2016-10-04T07:59:42+01:00", "2016-10-04T07:59:42+0100", "2016-10-04T07:59:42+01",
        "2016-10-04T06:59:42Z", "2016-10-04 06:59:42.000z"))
    frame = parse_history(text, "f")
    assert frame["time"].nunique() == 1 and frame["local_min"].iloc[:3].tolist() == [479.7] * 3
    assert frame["local_min"].iloc[3] == pytest.approx(419.7)
    naive = parse_history(HEADER + "A,2016-10-30T01:30:00,10,1\nA,2016-03-27T01:30:00,10,1\n", "f", "Europe/London")
    assert [str(t) for t in naive["time"]] == ["2016-10-30 00:30:00+00:00", "2016-03-27 01:00:00+00:00"]
    assert naive["local_min"].tolist() == [90.0, 120.0]
    epoch = parse_history(HEADER + "A,1475564382,10,1\nA,1475564382000,10,1\n", "f", "Europe/London")
    assert epoch["time"].nunique() == 1 and epoch["local_min"].iloc[0] == pytest.approx(479.7)


@pytest.mark.parametrize(("text", "match"), [
    ("", r"line 1: empty file"),
    ("\n \n", r"line 1: empty file"),
    ("site;timestamp\n", r"line 1: missing column\(s\) site_id, timestamp, capacity, occupied \(header 'site;timestamp'"),
    ("site_id,timestamp,capacity,occupied,SITE_ID\n", r"line 1: column\(s\) site_id given more than once"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10,3\nA,2016-10-04T08:29:42+0100,10,\n", r"line 3: field 'occupied'"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10,three\n", r"line 2: field 'occupied': invalid value 'three'"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10,2.5\n", r"line 2: field 'occupied'.*not a whole number"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10,1e30\n", rf"line 2: field 'occupied'.*over {MAX_SPACES:,}"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10,99999999999999999999999\n", r"line 2: field 'occupied'.*out of range"),
    (HEADER + "A,2016-10-04T07:59:42+0100,-5,3\n", r"line 2: field 'capacity'.*negative"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10,3,9\n", r"line 2: more fields than the 4 of the header"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10,3\nA,2016-10-04T08:59:42+0100,10,3,9\n", r"line 3: 5 fields, the header has 4"),
    (HEADER + "A,2016-10-04T07:59:42+0100,10\n", r"line 2: field 'occupied'"),
    (HEADER + " ,2016-10-04T07:59:42+0100,10,3\n", r"line 2: field 'site_id'.*empty"),
    (HEADER + "A,,10,3\n", r"line 2: field 'timestamp'.*not ISO 8601"),
    (HEADER + "A,2016-13-45T99:00:00+0100,10,3\n", r"line 2: field 'timestamp'"),
    (HEADER + "A,1066-10-14T09:00:00+0000,10,3\n", r"line 2: field 'timestamp'.*outside 1990-2099"),
    (HEADER + "A,9999-12-31T23:59:59Z,10,3\n", r"line 2: field 'timestamp'.*outside"),
    (HEADER + "A,0,10,3\n", r"line 2: field 'timestamp'.*outside"),
    (HEADER + "A,2016-10-04T07:59:42,10,3\n", r"line 2: field 'timestamp'.*no UTC offset"),
    ("\n\n" + HEADER + "A,2016-10-04T07:59:42+0100,10,3\n\nA,2016-10-04T08:59:42+0100,10,x\n", r"line 6: field 'occupied'"),
])
def test_bad_input_names_file_line_and_field(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "city.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(HistoryFormatError, match=rf"city\.csv: {match}"):
        read_history_csv(path)


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(HistoryFormatError, match=r"nope\.csv: no such file"):
        read_history_csv(tmp_path / "nope.csv")
    with pytest.raises(HistoryFormatError, match="not a regular file"):
        read_history_csv(tmp_path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "A,2016-10-04T07:59:42+0100,10,3\nCaf\xe9,2016-10-04T07:59:42+0100,10,3\n").encode("latin-1"))
    with pytest.raises(HistoryFormatError, match=r"latin\.csv: line 3: not UTF-8"):
        read_history_csv(latin)
    with pytest.raises(HistoryFormatError, match="unknown IANA time zone 'Mars/Base'"):
        read_history_csv(latin, timezone="Mars/Base")


def test_header_only_is_an_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(HEADER)
    frame = read_history_csv(path)
    assert frame.empty and list(frame.columns) == ["site_id", "time", "local_min", "weekday", "local_date",
                                                   "capacity", "occupied", "line"]
    cleaned, report = clean_history(frame)
    assert cleaned.empty and report.as_dict()["duplicates"] == 0


def test_capacity_zero_readings_are_dropped_and_counted() -> None:
    frame = parse_history(HEADER + "A,2016-10-04T07:59:42+0100,0,0\nA,2016-10-04T08:29:42+0100,0,3\n"
                          "B,2016-10-04T07:59:42+0100,10,3\nB,2016-10-04T07:59:42+0100,10,3\n", "f")
    cleaned, report = clean_history(frame)
    assert cleaned["site_id"].tolist() == ["B"]
    assert report.as_dict() == {"clamped": 0, "duplicates": 1, "over_capacity": 0, "negative": 0, "zero_capacity": 2}
