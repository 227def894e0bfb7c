"""The GTFS zip written from a `Feed` reads back to the same feed: the real Cairns feed, a feed
with ``frequencies.txt`` and interpolated times, a feed read back from the database, and two
agencies in one archive."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from its.db import Database
from telematics.gtfs import Feed, read_feed
from telematics.gtfs.database import import_feed_file, load_feed
from telematics.gtfs.writer import feed_zip, gtfs_time
from tests.telematics.test_frequencies import FILES as FREQUENCY_FILES

TABLES = ("agency", "routes", "stops", "trips", "stop_times", "calendar", "calendar_dates", "shapes", "frequencies")


def _zip(files: dict[str, str], path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def _read(data: bytes, tmp_path: Path, name: str = "out.zip") -> Feed:
    path = tmp_path / name
    path.write_bytes(data)
    return read_feed(path)


def assert_same_feed(want: Feed, got: Feed) -> None:
    for name in TABLES:
        a, b = getattr(want, name), getattr(got, name)
        if a is None or a.empty:
            assert b is None or b.empty, name
            continue
        pd.testing.assert_frame_equal(a.reset_index(drop=True), b[a.columns].reset_index(drop=True),
                                      check_dtype=False, obj=name)


@pytest.fixture(scope="module")
def frequency_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _zip(FREQUENCY_FILES, tmp_path_factory.mktemp("gtfs") / "freq.zip")


def test_times_past_midnight() -> None:
    assert [gtfs_time(s) for s in (0, 59, 3600 * 23 + 61, 90_600)] == ["00:00:00", "00:00:59", "23:01:01", "25:10:00"]


def test_real_feed_round_trip_is_exact_and_deterministic(cairns_zip: Path, tmp_path: Path) -> None:
    feed = read_feed(cairns_zip)
    data = feed_zip({"cairns": feed})
    assert feed_zip({"cairns": feed}) == data  # the same bytes: a stable ETag
    assert_same_feed(feed, _read(data, tmp_path))
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert names == sorted(names) and "frequencies.txt" not in names


def test_frequencies_and_interpolated_times_round_trip(frequency_zip: Path, tmp_path: Path) -> None:
    files = dict(FREQUENCY_FILES)
    # an intermediate stop without times: the reader interpolates it, the writer leaves it empty again
    files["stop_times.txt"] = files["stop_times.txt"].replace("PLAIN,12:02:00,12:02:00", "PLAIN,,")
    feed = read_feed(_zip(files, tmp_path / "gaps.zip"))
    assert feed.frequencies is not None and feed.stop_times["time_interpolated"].sum() == 1
    data = feed_zip({"a": feed})
    text = zipfile.ZipFile(io.BytesIO(data)).read("stop_times.txt").decode()
    assert "PLAIN,,,S1,2" in text.replace("\r", "")
    assert "EXACT,06:00:00,07:00:00,600,1" in zipfile.ZipFile(io.BytesIO(data)).read("frequencies.txt").decode()
    assert_same_feed(feed, _read(data, tmp_path))


def test_feed_read_back_from_the_database(db: Database, frequency_zip: Path, tmp_path: Path) -> None:
    import_feed_file(db, frequency_zip, "freq")
    stored = load_feed(db, "freq")
    assert_same_feed(read_feed(frequency_zip), _read(feed_zip({"freq": stored}), tmp_path))


def test_two_agencies_in_one_archive(cairns_zip: Path, frequency_zip: Path, tmp_path: Path) -> None:
    cairns, other = read_feed(cairns_zip), read_feed(frequency_zip)
    both = _read(feed_zip({"cairns": cairns, "test": other}), tmp_path)
    assert len(both.agency) == 2 and all(both.agency["agency_id"] != "")
    assert set(both.routes["agency_id"]) == set(both.agency["agency_id"])  # every route names its agency
    assert len(both.trips) == len(cairns.trips) + len(other.trips)
    assert len(both.stop_times) == len(cairns.stop_times) + len(other.stop_times)


def test_timepoints_read_back_from_the_database_are_written_as_gtfs(db: Database, tmp_path: Path) -> None:
    """``stop_times.timepoint`` comes back from the database as numbers (NaN where unset): the
    archive gives the GTFS enum, ``0``/``1`` (a strict validator refuses ``1.0``)."""
    files = dict(FREQUENCY_FILES)
    lines = files["stop_times.txt"].splitlines()
    files["stop_times.txt"] = "\n".join([lines[0] + ",timepoint"]
                                        + [f"{line},{int(k % 4 in (0, 2))}" for k, line in enumerate(lines[1:])]) + "\n"
    source = _zip(files, tmp_path / "timepoints.zip")
    import_feed_file(db, source, "tp")
    data = feed_zip({"tp": load_feed(db, "tp")})
    text = pd.read_csv(io.BytesIO(zipfile.ZipFile(io.BytesIO(data)).read("stop_times.txt")), dtype=str)
    assert sorted(set(text["timepoint"])) == ["0", "1"]
    assert_same_feed(read_feed(source), _read(data, tmp_path))
