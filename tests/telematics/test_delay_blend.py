"""The delay-propagation weight learnt from matured predictions (`telematics.delay_blend`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from telematics.avl import read_avl
from telematics.delay_blend import (
    ALONE_S,
    DEFAULT_WEIGHT,
    MIN_LABELS,
    WEIGHTS,
    alone_on_route,
    delay_weights,
)
from telematics.evaluate import evaluate_arrivals
from telematics.gtfs import Feed
from tests.telematics.core_fixtures import (
    cairns_fixture,  # noqa: F401  (fixture by name)
    pick,
)

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


def test_a_vehicle_is_alone_without_another_on_its_route_within_the_hour() -> None:
    # pings: vehicle 0 on route 1 at T0 and T0+600; vehicle 1 on route 1 at T0+300; vehicle 2 on route 2 at T0+900
    route, vehicle = np.array([1, 1, 1, 2]), np.array([0, 0, 1, 2])
    ping_s = T0 + np.array([0.0, 600.0, 300.0, 900.0])
    queries = [  # (route, vehicle, at s after T0, alone)
        (1, 0, 700.0, False),  # vehicle 1 was on route 1 400 s earlier
        (1, 0, 200.0, True),  # vehicle 1 is not seen yet: pings after the query are unknown
        (1, 0, 300.0 + ALONE_S + 1.0, True),  # its ping is more than ALONE_S old
        (1, 1, 700.0, False),  # vehicle 0's latest ping before, behind its own
        (2, 2, 1000.0, True),  # the only vehicle on route 2
        (3, 5, 1000.0, True),  # a route nobody reported on
        (1, 0, -10.0, True),  # before every ping
    ]
    r, v, at, want = (np.array(c) for c in zip(*queries, strict=True))
    assert alone_on_route(route, vehicle, ping_s, r, v, T0 + at).tolist() == want.tolist()
    assert alone_on_route([], [], [], [1], [0], [T0]).tolist() == [True]
    got = delay_weights(np.array([60.0, 60.0]), np.array([T0, T0]), [], [], [], [], np.array([True, False]))
    assert got.tolist() == [1.0, DEFAULT_WEIGHT]


def test_a_bus_alone_on_its_route_is_served_delay_propagation(wmata_dir: Path) -> None:
    """One bus of a route replayed alone gets delay propagation itself (never worse than it);
    with the other buses of its route the model is served as usual."""
    avl = read_avl(wmata_dir / "wmata_avl.csv")
    route = pick(avl["route_id"], "D96")
    buses = pd.unique(avl.loc[avl["route_id"] == route, "vehicle_id"]).tolist()
    busiest = str(avl.loc[avl["vehicle_id"].isin(buses), "vehicle_id"].value_counts().index[0])
    gtfs = wmata_dir / "wmata_gtfs.zip"
    alone = evaluate_arrivals(gtfs, wmata_dir / "wmata_avl.csv", vehicles=[busiest], assign=False)
    weights, mae = alone["delay_weight"], alone["mae_s"]
    delay = alone["baselines"]["delay_propagation"]["mae_s"]  # type: ignore[index]
    assert isinstance(weights, dict) and isinstance(mae, dict) and isinstance(delay, dict)
    assert alone["predictions"] > 100 and set(weights.values()) == {1.0}
    assert mae == delay
    together = evaluate_arrivals(gtfs, wmata_dir / "wmata_avl.csv", vehicles=buses, assign=False)
    served = together["delay_weight"]
    assert len(buses) >= 2 and isinstance(served, dict)
    # in company the model is served (WMATA: 0.2 everywhere; the stand-in's random-walk delays learn more)
    assert min(w for w in served.values() if w is not None) < 0.9


def test_the_live_fleet_tells_a_bus_alone_on_its_route(cairns: Feed) -> None:
    """The live fleet's rule is the eval's: no other vehicle's running time on a segment of the
    route learnt within ALONE_S (a route whose buses have only just reported, as the three
    Minneapolis snapshots, has none yet), remembered when that vehicle has lost its trip since."""
    from telematics.fleet import Fleet

    fleet = Fleet("cairns", cairns)
    day = date(2014, 6, 4)
    trips = cairns.trips.merge(cairns.stop_times.groupby("trip_id", as_index=False)["departure_time"].min(),
                               on="trip_id").sort_values("departure_time")
    route = str(trips["route_id"].value_counts().index[0])
    first, second = trips.loc[trips["route_id"] == route, "trip_id"].astype(str).tolist()[:2]
    other = str(trips.loc[trips["route_id"] != route, "trip_id"].iloc[0])
    t0 = datetime(2014, 6, 4, 8, tzinfo=UTC).timestamp()
    stops = cairns.stops.set_index("stop_id")

    def ping(vid: str, trip: str, k: int, at: float) -> None:
        stop = stops.loc[cairns.stop_times.loc[cairns.stop_times["trip_id"] == trip, "stop_id"].iloc[k]]
        trip_route = str(trips.loc[trips["trip_id"].astype(str) == trip, "route_id"].iloc[0])
        fleet.observe(("cairns", vid, datetime.fromtimestamp(at, UTC), float(stop["stop_lat"]),
                       float(stop["stop_lon"]), None, None, trip, trip_route, day, None, None))

    for vid, trip, at in (("a", first, t0 - 900.0), ("b", second, t0 - 1500.0), ("c", other, t0 - 900.0)):
        ping(vid, trip, 1, at)
    known = [fleet.vehicles[v] for v in ("a", "b", "c")]
    assert all(v.trip_id is not None for v in known)
    # reported, but no running time learnt on any segment yet: nothing beyond the schedule
    assert fleet._alone(t0 - 900.0, known) == {"a": True, "b": True, "c": True}
    for vid, trip, at in (("a", first, t0 - 900.0), ("b", second, t0 - 1500.0), ("c", other, t0 - 900.0)):
        for k in (2, 3, 4):  # at the next stops, a minute apart: the segment 1 -> 2 is learnt
            ping(vid, trip, k, at + 60.0 * (k - 1))
    assert fleet._alone(t0, known) == {"a": False, "b": False, "c": True}  # c's route has nobody else
    fleet.vehicles["b"].trip_id = None  # b loses its trip (a failure, a deadhead): still learnt from 20 min ago
    assert fleet._alone(t0 + 60.0, [fleet.vehicles["a"]]) == {"a": False}
    assert fleet._alone(t0 - 1500.0 + 180.0 + ALONE_S + 1.0, [fleet.vehicles["a"]]) == {"a": True}  # b's hour is over
