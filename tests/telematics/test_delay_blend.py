"""The delay-propagation weight learnt from matured predictions (`telematics.delay_blend`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from telematics.delay_blend import DEFAULT_WEIGHT, MIN_LABELS, WEIGHTS, delay_weights
from telematics.gtfs import Feed
from tests.telematics.core_fixtures import cairns_fixture  # noqa: F401  (fixture by name)

T0 = 1_700_000_000.0


def _labels(n: int, horizon_s: float, model_error_s: float, delay_error_s: float, seed: int = 0
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` matured predictions at ``horizon_s``, one a second from T0, errors around the given ones."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 10.0, n)
    return (np.full(n, horizon_s), T0 + np.arange(n, dtype=np.float64), model_error_s + noise,
            delay_error_s + noise)


def test_without_labels_the_model_is_served_as_usual() -> None:
    got = delay_weights(np.array([60.0, 900.0]), np.array([T0, T0]), [], [], [], [])
    assert np.all(got == DEFAULT_WEIGHT)
    assert len(delay_weights(np.zeros(0), np.zeros(0), [], [], [], [])) == 0


def test_delay_propagation_takes_over_a_band_only_once_clearly_better_on_enough_labels() -> None:
    """Delay propagation right and the model 2 min late at 12-30 min: after enough matured
    predictions that band is served by delay propagation, never before they were known, and the
    0-3 min band (no labels) keeps the default."""
    horizon, known, em, ed = _labels(int(3 * MIN_LABELS), 1200.0, 120.0, 0.0)
    at = np.array([T0 - 10.0, T0 + 3 * MIN_LABELS, T0 + 3 * MIN_LABELS])
    got = delay_weights(np.array([1200.0, 1200.0, 60.0]), at, horizon, known, em, ed)
    assert got[0] == DEFAULT_WEIGHT  # nothing known yet
    assert got[1] == WEIGHTS.max()
    assert got[2] == DEFAULT_WEIGHT
    few = int(MIN_LABELS // 2)
    assert delay_weights(np.array([1200.0]), np.array([T0 + few]), horizon[:few], known[:few], em[:few],
                         ed[:few])[0] == DEFAULT_WEIGHT


def test_a_better_model_or_a_small_edge_keeps_the_default() -> None:
    n = int(3 * MIN_LABELS)
    at = np.array([T0 + n])
    horizon, known, em, ed = _labels(n, 400.0, 20.0, 90.0)  # the model is better
    assert delay_weights(np.array([400.0]), at, horizon, known, em, ed)[0] == DEFAULT_WEIGHT
    horizon, known, em, ed = _labels(n, 400.0, 60.0, 56.0)  # delay propagation barely better
    assert delay_weights(np.array([400.0]), at, horizon, known, em, ed)[0] == DEFAULT_WEIGHT


def test_a_blend_between_wins_where_the_two_err_in_opposite_directions() -> None:
    """The model 60 s late, delay propagation 60 s early: the half-way weight is right."""
    n = int(3 * MIN_LABELS)
    horizon, known, em, ed = _labels(n, 500.0, 60.0, -60.0)
    got = delay_weights(np.array([500.0]), np.array([T0 + n]), horizon, known, em, ed)[0]
    assert got in (0.4, 0.6)


def test_the_live_fleet_learns_the_weight_where_delays_wander(cairns: Feed) -> None:
    """A simulated Cairns morning whose delays are a random walk (nothing the platform learns of
    the segments ahead tells more than the current delay): the live fleet's predictions at
    12-30 min follow delay propagation by the end of it, learnt from its own matured predictions."""
    from telematics.fleet import Fleet
    from telematics.simulator import FleetSimulation

    day = date(2014, 6, 4)
    sim = FleetSimulation(cairns, day, seed=4, gps_noise_m=5.0, delay_step_s=150.0)
    fleet = Fleet("cairns", cairns)
    start = sim.day0 + 6.5 * 3600
    for t in np.arange(start, start + 4 * 3600, 30.0):
        for vehicle, p in sim.positions(float(t)):
            fleet.observe(("cairns", vehicle, datetime.fromtimestamp(float(t), UTC), p["lat"], p["lon"],
                           p["speed_mps"], p["bearing"], p["trip_id"], p["route_id"], day, None, None))
        if int(t - start) % 60 == 0:
            fleet.board(float(t))
    blend = fleet._blend[:fleet._n_blend]  # (horizon s, known at s, model error s, delay propagation error s)
    assert len(blend) > 2 * MIN_LABELS
    late = blend[blend[:, 0] >= 720.0]
    assert np.abs(late[:, 3]).mean() < 0.9 * np.abs(late[:, 2]).mean()  # delay propagation was better there
    weights = delay_weights(np.array([1200.0]), np.array([start + 4 * 3600]), *blend.T)
    assert weights[0] > DEFAULT_WEIGHT
