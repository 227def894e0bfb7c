"""Daylight-saving days: GTFS times are counted from noon minus 12 h, so a service day that
gains or loses an hour schedules, assigns and predicts exactly as an ordinary one."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from telematics.gtfs import Feed, read_feed, rebase_calendar, service_day_start
from telematics.matrix import Dataset, evaluate_cell
from telematics.simulator import FleetSimulation, simulated_avl

NEW_YORK = "America/New_York"

#: (zone, the Sunday the clocks change) in both directions, in three hemispheres' rules
SWITCHES = [(NEW_YORK, date(2014, 3, 9)), (NEW_YORK, date(2014, 11, 2)),
            ("Europe/Berlin", date(2014, 3, 30)), ("Europe/Berlin", date(2014, 10, 26)),
            ("Australia/Sydney", date(2014, 4, 6)), ("Australia/Sydney", date(2014, 10, 5))]


@pytest.mark.parametrize(("zone", "day"), SWITCHES)
def test_gtfs_times_on_a_switch_day_are_the_wall_clock_after_the_switch(zone: str, day: date) -> None:
    """GTFS 08:00:00, 12:00:00 and 20:00:00 are the wall clock on the day the clocks change, the
    eve's service day is 23 or 25 h long, and the previous day's 25:30:00 is 01:30 wall clock counted on that day's
    offset (GTFS reference: "noon minus 12h")."""
    tz = ZoneInfo(zone)
    start = service_day_start(day, zone)
    for hour in (8, 12, 20):
        assert start + hour * 3600 == datetime(day.year, day.month, day.day, hour, tzinfo=tz).timestamp()
    before = day - timedelta(days=1)
    # the clocks change at night, between the eve's noon and the day's: the eve's service day
    # (noon to noon) is the short or long one, the switch day's is 24 h
    assert (start - service_day_start(before, zone)) / 3600 in (23, 25)
    assert (service_day_start(day + timedelta(days=1), zone) - start) / 3600 == 24
    late = service_day_start(before, zone) + 25.5 * 3600  # a night trip of the day before
    eve = datetime(before.year, before.month, before.day, 12, tzinfo=tz)
    assert late == eve.timestamp() + 13.5 * 3600  # counted on the eve's offset, as the trip was timetabled


NIGHT_SHIFT_S = 18 * 3600  # the morning service (05:50-10:40) becomes a night service, 23:50-28:40


@pytest.fixture(scope="module")
def new_york_night(cairns_zip: Path) -> Feed:
    """The real Cairns schedule placed in New York's time zone (it has daylight saving), every
    trip 18 h later: a night service running from before midnight to after 02:00."""
    feed = read_feed(cairns_zip)
    st = feed.stop_times
    st = st.assign(arrival_time=st["arrival_time"] + NIGHT_SHIFT_S, departure_time=st["departure_time"] + NIGHT_SHIFT_S)
    return replace(feed, agency=feed.agency.assign(agency_timezone=NEW_YORK), stop_times=st)


def _night_cell(feed: Feed, day: date) -> tuple[dict[str, Any], pd.Series]:
    """The first 40 vehicles of ``day``'s night service scored with the trip ids hidden; and the
    pings' times (epoch s)."""
    feed = rebase_calendar(feed, day)
    avl = simulated_avl(FleetSimulation(feed, day, seed=3, max_vehicles=40), 30.0)
    cell = evaluate_cell(Dataset("dst", feed, avl), "ids=hidden")
    return cell, avl["time_s"]


@pytest.mark.parametrize(("switch_eve", "ordinary_eve"), [
    (date(2014, 3, 8), date(2014, 3, 15)),  # clocks go forward at 02:00 that night
    (date(2014, 11, 1), date(2014, 11, 8)),  # and back
])
def test_a_night_across_the_switch_scores_as_an_ordinary_night(new_york_night: Feed, switch_eve: date,
                                                                ordinary_eve: date) -> None:
    """The same simulated night (same seed, same Saturday timetable) run across the clock change
    and a week later: the schedule baseline, the assignment with ids hidden and the predictions
    score the same: every part of the pipeline (the simulator, the assigner's service days, the
    eval's service day of a ping without one, the baselines) counts the night alike; the test
    above pins the count itself to the GTFS reference."""
    switch, switch_times = _night_cell(new_york_night, switch_eve)
    ordinary, _ = _night_cell(new_york_night, ordinary_eve)
    # the night does run across the change (02:00 local on the Sunday, wall clock before it)
    sunday = switch_eve + timedelta(days=1)
    change_s = datetime(sunday.year, sunday.month, sunday.day, 1, 59, tzinfo=ZoneInfo(NEW_YORK)).timestamp() + 60
    assert switch_times.min() < change_s - 1800 and change_s + 1800 < switch_times.max()
    for part in (switch, ordinary):
        assert part["positions_assignment"]["live"] > 0.9
    assert switch["predictions"] == ordinary["predictions"] > 1000
    assert switch["within_windows"] == pytest.approx(ordinary["within_windows"], abs=0.002)
    assert switch["positions_assignment"] == pytest.approx(ordinary["positions_assignment"], abs=0.002)
    for bucket, mae in ordinary["baselines"]["schedule"]["mae_s"].items():
        assert switch["baselines"]["schedule"]["mae_s"][bucket] == pytest.approx(mae, abs=1.0)
        assert mae < 600
    for bucket, mae in ordinary["mae_s"].items():
        assert switch["mae_s"][bucket] == pytest.approx(mae, abs=1.0)
