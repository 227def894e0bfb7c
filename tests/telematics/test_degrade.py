"""Degraded feeds (`telematics.degrade`): pure functions on the real WMATA day and feed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.avl import read_avl
from telematics.degrade import (
    DegradeSpec,
    SpecError,
    add_gps_noise,
    degrade,
    drop_motion,
    drop_shapes,
    hide_trip_ids,
    midnight_shift_s,
    parse_spec,
    shift_service,
    subsample,
)
from telematics.gtfs import Feed, service_day_start
from telematics.matching import LocalProjection
from tests.telematics.core_fixtures import wmata_fixture  # noqa: F401  (fixture by name)


@pytest.fixture(scope="module")
def avl(wmata_dir: Path) -> pd.DataFrame:
    return read_avl(wmata_dir / "wmata_avl.csv")


def _gaps(frame: pd.DataFrame) -> pd.Series:
    ordered = frame.sort_values(["vehicle_id", "time_s"], kind="stable")
    return ordered.groupby("vehicle_id")["time_s"].diff().dropna()


def test_spec_round_trips_and_names_bad_fields() -> None:
    spec = parse_spec("interval=120, shapes=0, ids=hidden, noise=15, motion=0, midnight=1")
    assert spec == DegradeSpec(interval_s=120.0, shapes=False, ids="hidden", noise_m=15.0, motion=False,
                               midnight=True)
    assert parse_spec(spec.label) == spec
    assert parse_spec("") == DegradeSpec()
    with pytest.raises(SpecError, match="field ids"):
        parse_spec("ids=secret")
    with pytest.raises(SpecError, match="field noise"):
        parse_spec("noise=-3")
    with pytest.raises(SpecError, match="unknown field 'speed'"):
        parse_spec("speed=0")
    with pytest.raises(SpecError, match="field=value"):
        parse_spec("interval")


@pytest.mark.parametrize("interval", [60.0, 120.0])
def test_subsample_spaces_each_vehicles_pings(avl: pd.DataFrame, interval: float) -> None:
    out = subsample(avl, interval)
    gaps = _gaps(out)
    assert gaps.min() >= 0.9 * interval
    assert abs(gaps.median() - interval) <= 0.1 * interval + 1  # recorded every ~30 s: every 2nd / 4th ping
    assert set(out["vehicle_id"]) == set(avl["vehicle_id"])
    # kept rows are unchanged recorded rows
    merged = out.merge(avl, on=["vehicle_id", "time_s"], suffixes=("", "_rec"))
    assert len(merged) == len(out) and np.allclose(merged["lat"], merged["lat_rec"])


def test_ids_hidden_keep_the_truth_apart(avl: pd.DataFrame) -> None:
    route = hide_trip_ids(avl, "route")
    assert (route["trip_id"] == "").all() and (route["route_id"] == avl["route_id"]).all()
    hidden = hide_trip_ids(avl, "hidden")
    assert (hidden[["trip_id", "route_id", "start_date"]] == "").all().all()
    assert (hidden["truth_trip_id"] == avl["trip_id"]).all()
    assert (hidden["truth_start_date"] == avl["start_date"]).all()
    assert (avl["trip_id"] != "").all()  # the input is not modified


def test_gps_noise_has_the_requested_spread_and_is_seeded(avl: pd.DataFrame) -> None:
    projection = LocalProjection(float(avl["lat"].mean()), float(avl["lon"].mean()))
    clean = projection.to_xy(avl["lat"], avl["lon"])
    noisy = add_gps_noise(avl, 15.0, seed=3)
    moved = projection.to_xy(noisy["lat"], noisy["lon"]) - clean
    assert np.allclose(moved.std(axis=0), 15.0, rtol=0.05)
    assert np.allclose(moved.mean(axis=0), 0.0, atol=0.5)
    again = add_gps_noise(avl, 15.0, seed=3)
    assert (again["lat"] == noisy["lat"]).all()
    assert not (add_gps_noise(avl, 15.0, seed=4)["lat"] == noisy["lat"]).all()
    assert (add_gps_noise(avl, 0.0)["lat"] == avl["lat"]).all()


def test_motion_and_shapes_dropped(avl: pd.DataFrame, wmata: Feed) -> None:
    still = drop_motion(avl)
    assert still["speed_mps"].isna().all() and still["bearing"].isna().all()
    assert avl["speed_mps"].notna().any()
    bare = drop_shapes(wmata)
    assert bare.shapes is None and wmata.shapes is not None
    assert bare.stop_times is wmata.stop_times


def test_service_shift_crosses_midnight_with_the_same_lateness(avl: pd.DataFrame, wmata: Feed) -> None:
    shift = midnight_shift_s(avl["time_s"], wmata.timezone)
    assert shift > 0 and shift % 60 == 0
    moved, feed = shift_service(avl, wmata, shift)
    local = pd.to_datetime(moved["time_s"], unit="s", utc=True).dt.tz_convert(wmata.timezone)
    dates = set(local.dt.strftime("%Y%m%d"))
    assert dates == {"20260216", "20260217"}  # pings on both sides of local midnight
    assert (moved["start_date"] == "20260216").all()  # the service date is kept
    assert feed.stop_times["arrival_time"].max() > 86400  # times past 24:00
    # every ping keeps its delay against its trip's schedule
    day0 = service_day_start(pd.Timestamp("2026-02-16").date(), wmata.timezone)
    first = wmata.stop_times.groupby("trip_id")["departure_time"].min()
    first_moved = feed.stop_times.groupby("trip_id")["departure_time"].min()
    trips = avl["trip_id"].to_numpy()
    before = avl["time_s"].to_numpy() - day0 - first.reindex(trips).to_numpy()
    after = moved["time_s"].to_numpy() - day0 - first_moved.reindex(trips).to_numpy()
    assert np.allclose(before, after)
    with pytest.raises(SpecError):
        shift_service(avl, wmata, -60.0)


def test_degrade_combines_the_cell(avl: pd.DataFrame, wmata: Feed) -> None:
    spec = parse_spec("interval=120,shapes=0,ids=hidden,noise=30,motion=0,midnight=1")
    out, feed, shift = degrade(avl, wmata, spec)
    assert shift == midnight_shift_s(avl["time_s"], wmata.timezone)
    assert feed.shapes is None and (out["trip_id"] == "").all() and out["bearing"].isna().all()
    assert _gaps(out).min() >= 108.0
    assert out["time_s"].is_monotonic_increasing
    assert set(out["truth_trip_id"]) <= set(avl["trip_id"])
    same, feed_same, none = degrade(avl, wmata, DegradeSpec())
    assert none == 0.0 and feed_same is wmata and len(same) == len(avl)
    assert (same["trip_id"] == avl["trip_id"]).all()


@settings(max_examples=40, deadline=None)
@given(times=st.lists(st.floats(0, 5000, allow_nan=False), min_size=0, max_size=40),
       vehicles=st.lists(st.sampled_from(["a", "b", "c"]), min_size=40, max_size=40),
       interval=st.floats(1, 600))
def test_subsample_property(times: list[float], vehicles: list[str], interval: float) -> None:
    frame = pd.DataFrame({"vehicle_id": vehicles[:len(times)], "time_s": times})
    out = subsample(frame, interval)
    assert set(out["vehicle_id"]) == set(frame["vehicle_id"])  # every vehicle keeps its first ping
    assert len(out) <= len(frame)
    if len(out):
        assert _gaps(out).min() >= 0.9 * interval if len(_gaps(out)) else True
    assert dataclasses.replace(DegradeSpec(), interval_s=interval).interval_s == interval
