"""Walk-forward blend weights and predictive distributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from parking.blend import (
    COMBOS,
    LEVELS,
    combine,
    free_probability,
    walk_forward_quantiles,
    walk_forward_weights,
)
from parking.cleaning import clean_history
from parking.forecast import walk_forward


def _random_walk_history(days: int, sites: int = 4, capacity: int = 300, seed: int = 0) -> pd.DataFrame:
    """Sites whose occupancy wanders without any daily pattern, read every 5 min, 07:00-19:00."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(7 * 60, 19 * 60, 5, dtype=float)
    start = pd.Timestamp("2026-03-02", tz="UTC")
    rows = []
    for s in range(sites):
        level = capacity / 2
        for d in range(days):
            day = start + pd.Timedelta(days=d)
            for m in minutes:
                level = float(np.clip(level + rng.normal(0, 6), 0, capacity))
                rows.append((f"S{s}", day + pd.Timedelta(minutes=m), capacity, round(level)))
    frame = pd.DataFrame(rows, columns=["site_id", "time", "capacity", "occupied"])
    local = frame["time"].dt.tz_localize(None)
    return frame.assign(local_min=(local.dt.hour * 60 + local.dt.minute).astype(float),
                        weekday=local.dt.day_of_week, local_date=local.dt.normalize())


def test_weights_come_only_from_earlier_days() -> None:
    rng = np.random.default_rng(1)
    n = 600
    site = rng.integers(0, 3, n)
    day = np.sort(rng.integers(0, 10, n))
    cands = rng.normal(50, 10, (n, 3))
    truth = cands[:, 0] + rng.normal(0, 1, n)  # persistence is right
    w = walk_forward_weights(site, day, cands, truth, 3, 10, prior_points=20, decay=1.0)
    assert w.shape == (3, 11, 3)
    np.testing.assert_allclose(w.sum(axis=2), 1.0)
    np.testing.assert_array_equal(w[:, 0], np.tile([0.0, 1.0, 0.0], (3, 1)))  # nothing learnt yet: the model
    assert (w[:, -1, 0] >= 0.9).all()  # learnt: persistence
    later = np.where(day >= 6, cands[:, 1], truth)  # from day 6 on, the model is right
    w2 = walk_forward_weights(site, day, cands, later, 3, 10, prior_points=20, decay=1.0)
    np.testing.assert_array_equal(w2[:, :7], w[:, :7])  # weights up to day 6 never saw it
    assert not np.array_equal(w2[:, 7:], w[:, 7:])


def test_blend_moves_to_persistence_where_profiles_do_not_hold() -> None:
    """On occupancy without a daily pattern the profile model is worse than persistence at
    short horizons; the learnt blend must not be, and must beat the model."""
    cleaned, _ = clean_history(_random_walk_history(days=28))
    walk = walk_forward(cleaned, slot_min=30, min_days=7)
    for h in (15, 30):
        hf = walk.horizons[h]
        ok = hf.scored
        truth = hf.truth[ok]
        mae = {name: float(np.mean(np.abs(hf.candidates[ok, k] - truth))) for k, name in
               enumerate(("persistence", "model", "seasonal"))}
        blended = float(np.mean(np.abs(hf.blended[ok] - truth)))
        assert mae["model"] > mae["persistence"], mae  # the scenario is the one meant
        assert blended <= 1.02 * mae["persistence"], (h, blended, mae)
        assert blended < mae["model"] and blended < mae["seasonal"]
        assert hf.weights[:, -1, 0].mean() >= 0.6  # weights learnt toward persistence


def test_combine_renormalises_over_available_candidates() -> None:
    cands = np.array([[10.0, 20.0, np.nan], [np.nan, np.nan, np.nan]])
    w = np.array([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4]])
    out = combine(cands, w)
    assert out[0] == (0.5 * 10 + 0.25 * 20) / 0.75 and np.isnan(out[1])
    assert len(COMBOS) == 66 and np.allclose(COMBOS.sum(axis=1), 1.0)


def test_free_probability_matches_the_error_distribution() -> None:
    sigma = 10.0
    q = stats.norm.ppf(LEVELS, scale=sigma)[None, :].repeat(5, axis=0)
    predicted = np.array([100.0, 95.0, 90.0, 80.0, 140.0])
    capacity = np.full(5, 100.0)
    p = free_probability(predicted, capacity, q)
    expected = stats.norm.cdf(capacity - 0.5 - predicted, scale=sigma)
    np.testing.assert_allclose(p[:4], expected[:4], atol=0.01)
    assert p[4] == 0.005  # beyond the 1st percentile: not resolved, half of it
    assert np.all(np.diff(p[:4]) > 0)  # emptier forecast, likelier space
    assert np.isnan(free_probability([np.nan], [100.0], q[:1]))[0]


def test_walk_forward_quantiles_fall_back_to_all_sites() -> None:
    rng = np.random.default_rng(2)
    site = np.r_[np.zeros(200, np.int64), np.ones(5, np.int64)]
    day = np.r_[np.repeat(np.arange(4), 50), np.array([0, 1, 2, 3, 3])]
    resid = np.r_[rng.normal(0, 5, 200), np.full(5, 50.0)]
    q = walk_forward_quantiles(site, day, resid, np.array([100.0, 200.0]), 2, 4, min_points=30)
    assert np.isnan(q[:, 0]).all()  # nothing before day 0
    assert q[0, 4, 49] == np.quantile(resid[:200], 0.5)  # site 0: its own errors
    # site 1 has 5 errors: all sites' errors relative to capacity, scaled to its 200 spaces
    rel = np.r_[resid[:200] / 100.0, resid[200:] / 200.0]
    np.testing.assert_allclose(q[1, 4], np.quantile(rel, LEVELS) * 200.0)
