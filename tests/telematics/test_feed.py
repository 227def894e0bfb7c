"""GTFS reading on the real Cairns, New York subway and WMATA feeds, and bad files."""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from telematics.gtfs import (
    Feed,
    FeedError,
    read_feed,
    rebase_calendar,
    service_day_start,
    service_ids_on,
    trip_paths,
    trips_running_at,
)
from tests.telematics.core_fixtures import (  # noqa: F401  (fixtures by name)
    cairns_fixture,
    wmata_fixture,
    wmata_paths_fixture,
)


def test_cairns_tables_and_dtypes(cairns: Feed) -> None:
    assert len(cairns.stops) == 416
    assert len(cairns.trips) == 1339
    assert len(cairns.stop_times) == 37790
    assert cairns.shapes is not None and cairns.frequencies is None
    st = cairns.stop_times
    assert st["arrival_time"].dtype == np.int64
    first = st.groupby("trip_id")["stop_sequence"].apply(lambda s: s.is_monotonic_increasing)
    assert first.all()
    assert isinstance(cairns.calendar["start_date"].iloc[0], date)
    assert cairns.timezone == "Australia/Brisbane"


@pytest.fixture(scope="module")
def nyc(sample_data: Path) -> Feed:
    """The real New York City subway feed of the gtfs-kit sdist (2024-12-15..2025-01-17)."""
    return read_feed(sample_data / "gtfs" / "nyc_subway_gtfs.zip")


def test_times_past_midnight(nyc: Feed) -> None:
    # the subway runs trips past 24:00; they stay on the service day's clock
    st = nyc.stop_times
    assert st["departure_time"].max() > 27 * 3600
    late = st.loc[st["departure_time"].idxmax(), "trip_id"]
    trip = st[st["trip_id"] == late]
    assert trip["arrival_time"].iloc[0] < trip["arrival_time"].iloc[-1] and trip["arrival_time"].iloc[-1] > 24 * 3600
    assert trip["stop_sequence"].is_monotonic_increasing


def test_service_days_from_calendar_and_exceptions(nyc: Feed, cairns: Feed) -> None:
    # Christmas 2024 (a Wednesday): the weekday service removed, the Sunday one added by calendar_dates
    assert service_ids_on(nyc, date(2024, 12, 25)) == {"Sunday"}
    assert service_ids_on(nyc, date(2024, 12, 26)) == {"Weekday"}
    assert service_ids_on(nyc, date(2025, 1, 1)) == {"Sunday"}
    monday = service_ids_on(cairns, date(2014, 6, 2))
    assert "CNS2014-CNS_MUL-Weekday-00" in monday
    assert "CNS2014-CNS_MUL-Weekday-00" not in service_ids_on(cairns, date(2014, 6, 9))


@pytest.mark.parametrize("name", ["cairns", "nyc"])
def test_trip_paths_put_stops_on_shapes(request: pytest.FixtureRequest, name: str) -> None:
    feed: Feed = request.getfixturevalue(name)
    paths = trip_paths(feed)
    stops = feed.stops.set_index("stop_id")
    st = feed.stop_times
    assert set(paths.trip_path) == set(feed.trips["trip_id"])
    for trip in list(paths.trip_path)[::200]:
        dist = paths.stop_dist_m[trip]
        assert np.all(np.diff(dist) >= 0)
        ids = st.loc[st["trip_id"] == trip, "stop_id"]
        xy = paths.projection.to_xy(stops.loc[ids, "stop_lat"], stops.loc[ids, "stop_lon"])
        offset = np.hypot(*(paths[trip].point_at(dist) - xy).T)
        assert np.max(offset) < 60.0


def test_without_shapes_the_stop_sequence_is_the_path(cairns_zip: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(cairns_zip) as z:
        z.extractall(tmp_path)
    (tmp_path / "shapes.txt").unlink()
    feed = read_feed(tmp_path)
    assert feed.shapes is None
    paths = trip_paths(feed)
    trip = feed.trips["trip_id"].iloc[0]
    assert paths.trip_path[trip].startswith("trip:")
    same = feed.stop_times.groupby("trip_id")["stop_id"].agg(tuple)
    twins = same[same == same[trip]].index  # trips with the same stops share one path
    assert {paths.trip_path[t] for t in twins} == {paths.trip_path[trip]}
    dist = paths.stop_dist_m[trip]
    assert dist[0] == 0.0 and np.all(np.diff(dist) >= 0) and dist[-1] > 1000.0


def _broken_copy(cairns_zip: Path, tmp_path: Path, name: str, edit: object) -> Path:
    folder = tmp_path / "feed"
    with zipfile.ZipFile(cairns_zip) as z:
        z.extractall(folder)
    path = folder / name
    lines = path.read_text(encoding="utf-8").splitlines()
    assert callable(edit)
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return folder


def test_truncated_zip_names_the_file(cairns_zip: Path, tmp_path: Path) -> None:
    broken = tmp_path / "cut.zip"
    broken.write_bytes(cairns_zip.read_bytes()[:150_000])
    with pytest.raises(FeedError, match=r"cut\.zip"):
        read_feed(broken)


def test_missing_column_names_file_and_field(cairns_zip: Path, tmp_path: Path) -> None:
    def drop_lat(lines: list[str]) -> list[str]:
        return [line.replace("stop_lat", "stop_latitude", 1) if i == 0 else line
                for i, line in enumerate(lines)]

    folder = _broken_copy(cairns_zip, tmp_path, "stops.txt", drop_lat)
    with pytest.raises(FeedError) as err:
        read_feed(folder)
    assert str(err.value).startswith("stops.txt line 1 field stop_lat")


def test_bad_time_names_file_line_and_field(cairns_zip: Path, tmp_path: Path) -> None:
    def break_time(lines: list[str]) -> list[str]:
        lines[6] = lines[6].replace(lines[6].split(",")[1], "7:6o:00", 1)
        return lines

    folder = _broken_copy(cairns_zip, tmp_path, "stop_times.txt", break_time)
    with pytest.raises(FeedError) as err:
        read_feed(folder)
    assert err.value.file == "stop_times.txt"
    assert err.value.line == 7
    assert err.value.field == "arrival_time"
    assert "7:6o:00" in str(err.value)


def test_dangling_stop_reference(cairns_zip: Path, tmp_path: Path) -> None:
    def bad_stop(lines: list[str]) -> list[str]:
        parts = lines[3].split(",")
        parts[3] = "no-such-stop"
        lines[3] = ",".join(parts)
        return lines

    folder = _broken_copy(cairns_zip, tmp_path, "stop_times.txt", bad_stop)
    with pytest.raises(FeedError, match=r"stop_times\.txt line 4 field stop_id: unknown stop_id"):
        read_feed(folder)


def test_missing_required_file(cairns_zip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    with zipfile.ZipFile(cairns_zip) as z:
        z.extractall(folder)
    (folder / "trips.txt").unlink()
    with pytest.raises(FeedError, match=r"trips\.txt: required file missing"):
        read_feed(folder)
    shutil.rmtree(folder)


def test_cairns_stops_placed_on_shapes(cairns: Feed) -> None:
    paths = trip_paths(cairns)
    stops = cairns.stops.set_index("stop_id")
    st = cairns.stop_times
    offsets = []
    for trip in cairns.trips["trip_id"].iloc[::25]:
        ids = st.loc[st["trip_id"] == trip, "stop_id"]
        xy = paths.projection.to_xy(stops.loc[ids, "stop_lat"], stops.loc[ids, "stop_lon"])
        dist = paths.stop_dist_m[trip]
        assert np.all(np.diff(dist) >= 0)
        offsets.append(np.hypot(*(paths[trip].point_at(dist) - xy).T))
    # a handful of Cairns stops lie off their shapes (before its start, on a detour)
    assert np.mean(np.concatenate(offsets) < 60.0) > 0.99


def test_trips_running_at_a_moment_follow_the_timetable(cairns: Feed, nyc: Feed) -> None:
    """Cairns runs more buses at a weekday 08:30 than a Sunday 08:30 and none at a Sunday 06:30;
    a subway trip past 24:00 runs on the next calendar day and counts there."""
    feed = rebase_calendar(cairns, date(2026, 12, 4))
    zone = ZoneInfo(feed.timezone)
    at = {name: datetime(2026, 12, day, hour, 30, tzinfo=zone).timestamp()
          for name, day, hour in (("friday_morning", 4, 8), ("sunday_morning", 6, 8), ("sunday_dawn", 6, 6))}
    assert trips_running_at(feed, at["friday_morning"]) > trips_running_at(feed, at["sunday_morning"]) > 0
    assert trips_running_at(feed, at["sunday_dawn"]) == 0
    # the latest subway trip of the service day, half-way through, on the next calendar day
    st = nyc.stop_times
    late = st.loc[st["departure_time"].idxmax(), "trip_id"]
    day = date(2024, 12, 22)  # a Sunday
    assert nyc.trips.set_index("trip_id").at[late, "service_id"] in service_ids_on(nyc, day)
    trip = st[st["trip_id"] == late]
    middle_s = service_day_start(day, nyc.timezone) + (trip["departure_time"].iloc[0] + trip["arrival_time"].iloc[-1]) / 2
    assert datetime.fromtimestamp(middle_s, ZoneInfo(nyc.timezone)).date() == day + timedelta(days=1)
    without = replace(nyc, stop_times=st[st["trip_id"] != late])
    assert trips_running_at(nyc, middle_s) == trips_running_at(without, middle_s) + 1
