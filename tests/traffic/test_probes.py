"""Probe map-matching: exact recovery on a synthetic grid, and the real WMATA AVL over the
network derived from the WMATA GTFS shapes."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from its.db import Database
from maps.from_gtfs import ShapeNetwork, derive_network
from maps.routing import Router
from maps.synthetic import grid_network
from traffic.probes import MatchedPings, Pings, ProbeMatcher, aggregate_traversals
from traffic.store import load_probe_observations, write_probe_observations


def test_grid_drive_is_matched_to_the_driven_edges_and_speed_recovered() -> None:
    net = grid_network(8, 8, spacing_m=120.0)
    route = Router(net).route_nodes(0, 63)
    line = shapely.line_merge(shapely.MultiLineString([net.geometries_xy[e] for e in route.edges]))
    rng = np.random.default_rng(7)
    speed, step_s = 9.0, 10.0
    dist = np.arange(0, line.length, speed * step_s)
    pts = shapely.get_coordinates(shapely.line_interpolate_point(line, dist))
    xy = pts + rng.normal(0, 6.0, pts.shape)
    lon, lat = net.projector.to_lonlat(xy[:, 0], xy[:, 1])
    # a dwell at the start: three pings at the same spot
    lon = np.concatenate([[lon[0]] * 3, lon])
    lat = np.concatenate([[lat[0]] * 3, lat])
    t = np.concatenate([[-30.0, -20.0, -10.0], np.arange(len(dist)) * step_s]) + 1_700_000_000
    pings = Pings(np.full(len(t), "bus1"), t, lon, lat, np.full(len(t), np.nan))
    matcher = ProbeMatcher(net)
    matched = matcher.match(pings)
    assert (matched.edge >= 0).all()
    assert np.isin(matched.edge, route.edges).mean() >= 0.95
    trav = matcher.traversals(pings, matched)
    assert set(trav.edge.tolist()) <= set(route.edges.tolist())
    assert not np.isin(trav.interval, [0, 1]).any()  # dwell intervals excluded
    covered = np.bincount(trav.edge, weights=trav.covered_m, minlength=net.n_edges)
    inner = route.edges[1:-1]
    np.testing.assert_allclose(covered[inner], net.length_m[inner], rtol=0.02)
    obs = aggregate_traversals(trav, bin_s=300)
    assert abs(np.median(obs.speed_mps) - speed) < 0.1 * speed


@dataclass
class Wmata:
    shapes: ShapeNetwork
    avl: pd.DataFrame
    pings: Pings
    matcher: ProbeMatcher
    matched: MatchedPings
    shape_of_trip: dict[str, str]


@pytest.fixture(scope="module")
def wmata(wmata_dir: Path) -> Wmata:
    root = wmata_dir  # the real WMATA subset, else its stand-in (tests.standins)
    if not (root / "wmata_avl.csv").is_file():
        pytest.skip(f"WMATA AVL not found under {root}")
    shapes = derive_network(root / "wmata_gtfs.zip")
    avl = pd.read_csv(root / "wmata_avl.csv", dtype={"trip_id": str, "vehicle_id": str})
    with zipfile.ZipFile(root / "wmata_gtfs.zip") as z:
        trips = pd.read_csv(z.open("trips.txt"), dtype=str)
    pings = Pings.from_frame(avl)
    matcher = ProbeMatcher(shapes.network)
    return Wmata(shapes, avl, pings, matcher, matcher.match(pings), dict(zip(trips.trip_id, trips.shape_id, strict=True)))


def test_wmata_moving_pings_match_their_trip_shape(wmata: Wmata) -> None:
    m = wmata.matched
    assert (m.edge >= 0).mean() > 0.99
    assert np.nanmedian(m.distance_m) < 5.0
    shape = wmata.avl["trip_id"].map(wmata.shape_of_trip)
    on_shape = np.array([
        e >= 0 and isinstance(s, str) and bool(np.isin(e, wmata.shapes.shape_edges[s]))
        for e, s in zip(m.edge, shape, strict=True)
    ])
    moving = wmata.avl["speed_mps"].to_numpy() > 2.0
    assert on_shape[moving].mean() > 0.93


def test_wmata_probe_speeds_agree_with_reported_speeds(wmata: Wmata) -> None:
    trav = wmata.matcher.traversals(wmata.pings, wmata.matched)
    assert len(trav.edge) > 10_000
    order = np.lexsort((wmata.pings.time_s, wmata.pings.vehicle))
    pos = np.empty(len(order), dtype=np.int64)
    pos[order] = np.arange(len(order))
    nxt = order[pos[trav.interval] + 1]
    reported = wmata.avl["speed_mps"].to_numpy()
    mean_reported = (reported[trav.interval] + reported[nxt]) / 2
    v = trav.covered_m / trav.travel_s
    assert np.median(np.abs(v - mean_reported)) < 2.5
    assert np.corrcoef(v, mean_reported)[0, 1] > 0.5
    # stationary intervals (both pings report 0 m/s at the same spot) never yield a speed
    gap = wmata.matched.route_m[nxt]
    still = (reported[trav.interval] == 0) & (reported[nxt] == 0) & (gap < 5.0)
    assert not still.any()
    obs = aggregate_traversals(trav, bin_s=300)
    assert obs.speed_mps.min() >= wmata.matcher.settings.probe_dwell_speed_mps * 0.99
    assert obs.speed_mps.max() <= wmata.matcher.settings.probe_max_speed_mps
    assert len(np.unique(obs.edge)) > 0.3 * wmata.shapes.network.n_edges


def test_wmata_probe_observations_round_trip_through_the_timeseries_table(wmata: Wmata, db: Database) -> None:
    trav = wmata.matcher.traversals(wmata.pings, wmata.matched)
    obs = aggregate_traversals(trav, bin_s=300)
    assert write_probe_observations(db, "wmata", obs) == len(obs)
    assert write_probe_observations(db, "wmata", obs) == 0  # idempotent key (network, edge, time)
    back = load_probe_observations(db, "wmata", pd.Timestamp("2026-02-16", tz="UTC").to_pydatetime())
    assert len(back) == len(obs)
    key = np.lexsort((obs.edge, obs.time_s))
    np.testing.assert_array_equal(back.edge, obs.edge[key])
    np.testing.assert_allclose(back.speed_mps, obs.speed_mps[key])
    assert back.samples.sum() == obs.samples.sum()
