"""Forecasts: profiles from earlier days only, thin history refused, bands around the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from parking.cleaning import clean_history, read_history_csv
from parking.forecast import SiteForecaster, build_grid, fit_decay, walk_forward_profiles


def _site_history(days: int, capacity: int = 200) -> pd.DataFrame:
    """A synthetic site filling every morning: occupied = 150 * ramp(time) (spaces)."""
    minutes = np.arange(8 * 60, 17 * 60, 30, dtype=float)
    start = pd.Timestamp("2026-11-02", tz="UTC")  # a Monday
    rows = []
    for d in range(days):
        day = start + pd.Timedelta(days=d)
        occ = 150 * np.clip((minutes - 480) / 240, 0, 1)
        for m, o in zip(minutes, occ, strict=True):
            rows.append(("S", day + pd.Timedelta(minutes=m), capacity, int(o)))
    frame = pd.DataFrame(rows, columns=["site_id", "time", "capacity", "occupied"])
    local = frame["time"].dt.tz_localize(None)
    return frame.assign(
        local_min=(local.dt.hour * 60 + local.dt.minute).astype(float),
        weekday=local.dt.day_of_week,
        local_date=local.dt.normalize(),
    )


def test_profiles_use_only_earlier_days(birmingham_csv: Path) -> None:
    cleaned, _ = clean_history(read_history_csv(birmingham_csv))
    grid = build_grid(cleaned, 30)
    profiles = walk_forward_profiles(grid)
    assert np.isnan(profiles.blended[:, 0]).all()  # nothing before the first day
    assert (profiles.history_days[:, 0] == 0).all()
    # changing the last day's readings must not change any profile
    occupied = grid.occupied.copy()
    occupied[:, -1] += 1000
    changed = walk_forward_profiles(grid.__class__(grid.sites, grid.days, grid.weekdays, 30, occupied, grid.capacity))
    np.testing.assert_array_equal(np.nan_to_num(changed.blended), np.nan_to_num(profiles.blended))
    rho = fit_decay(grid, profiles)
    assert rho.shape == (len(grid.days), 7)
    assert ((rho >= 0) & (rho <= 1)).all()
    assert 0.3 < rho[-1, 1] <= 1.0  # deviations persist half an hour
    assert rho[-1, 2] <= rho[-1, 1] + 1e-9  # and decay with the lag


def test_thin_history_gives_a_reason() -> None:
    forecaster = SiteForecaster(_site_history(3), min_days=7)
    points = forecaster.forecast("S", weekday=3, local_min=600, occupied_now=80, capacity=200)
    assert [p.horizon_min for p in points] == [15, 30, 60]
    assert all(p.free is None for p in points)
    assert all(p.reason is not None and "3 day(s)" in p.reason for p in points)
    unknown = forecaster.forecast("nope", 0, 600, 10, 100)
    assert unknown[0].reason is not None and "0 day(s)" in unknown[0].reason


def test_forecast_follows_the_profile() -> None:
    forecaster = SiteForecaster(_site_history(21), min_days=7)
    # at 09:00 the usual occupancy is 37; at 10:00 it is 75 -> 125 free
    points = {p.horizon_min: p for p in forecaster.forecast("S", 0, 540, 37, 200)}
    assert points[60].free == pytest.approx(125, abs=2)
    low, mid, high = points[60].free_low, points[60].free, points[60].free_high
    assert low is not None and mid is not None and high is not None
    assert low <= mid <= high
    # 20 more cars than usual now: part of it stays in the forecast, never more than all of it
    busier = {p.horizon_min: p for p in forecaster.forecast("S", 0, 540, 57, 200)}
    assert busier[60].free is not None and points[60].free is not None
    assert 0 <= points[60].free - busier[60].free <= 20


def test_forecaster_on_birmingham(birmingham_csv: Path) -> None:
    cleaned, _ = clean_history(read_history_csv(birmingham_csv))
    forecaster = SiteForecaster(cleaned, min_days=7)
    points = forecaster.forecast("BHMBCCMKT01", weekday=1, local_min=9 * 60, occupied_now=150, capacity=577)
    assert all(p.free is not None and 0 <= p.free <= 577 for p in points)
    assert all(p.free_low is not None and p.free_high is not None and p.free_low <= p.free_high for p in points)
    late = forecaster.forecast("BHMBCCMKT01", weekday=1, local_min=23 * 60 + 50, occupied_now=10, capacity=577)
    assert late[-1].free is None and late[-1].reason


def test_live_forecaster_uses_the_learnt_blend_and_its_errors() -> None:
    """Where the profile does not hold (occupancy wandering without a daily pattern) the live
    forecasts lean on persistence, with bands and a chance of a space from past errors."""
    from tests.parking.test_blend import _random_walk_history

    cleaned, _ = clean_history(_random_walk_history(days=21))
    forecaster = SiteForecaster(cleaned, min_days=7)
    weights = forecaster.weights("S0", 15)
    assert weights is not None and weights[0] >= 0.5 and abs(weights.sum() - 1) < 1e-9
    points = {p.horizon_min: p for p in forecaster.forecast("S0", 2, 600, occupied_now=250, capacity=300)}
    p15 = points[15]
    assert p15.free is not None and abs(p15.free - 50) <= 10  # close to the 50 free now
    assert p15.free_low is not None and p15.free_high is not None and p15.free_low < p15.free < p15.free_high
    errors = forecaster.error_quantiles("S0", 15)
    assert errors is not None and p15.error_quantiles is not None and np.all(np.diff(errors) >= 0)
    chance = SiteForecaster.chance_of_space(p15, 300)
    assert chance is not None and chance > 0.95  # 50 free, errors of a few spaces in 15 min
    full = {p.horizon_min: p for p in forecaster.forecast("S0", 2, 600, occupied_now=300, capacity=300)}
    full_chance = SiteForecaster.chance_of_space(full[15], 300)
    assert full_chance is not None and full_chance < chance
    wide = SiteForecaster.chance_of_space(points[60], 300)
    assert wide is not None and wide <= chance  # further ahead, less certain
