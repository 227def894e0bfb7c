"""Scoring trip assignment against recorded trips: the turnaround convention
(`telematics.position_assignment.turnaround_neighbours`), on the real WMATA day."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from telematics.avl import read_avl
from telematics.evaluate import _service_start
from telematics.gtfs import Feed, TripPaths
from telematics.position_assignment import TURNAROUND_M, turnaround_neighbours
from tests.telematics.core_fixtures import wmata_fixture, wmata_paths_fixture  # noqa: F401  (fixtures by name)


def _block_sequences(feed: Feed) -> pd.DataFrame:
    """Trips of each block in order (block, trip, rank) for the trips the AVL day runs."""
    first = feed.stop_times.groupby("trip_id")["departure_time"].min().rename("start_s")
    trips = feed.trips.join(first, on="trip_id")
    trips = trips[trips["block_id"] != ""].sort_values(["block_id", "service_id", "start_s"])
    trips["rank"] = trips.groupby(["block_id", "service_id"]).cumcount()
    return trips.set_index("trip_id")


@pytest.mark.eval  # WMATA's recorded turnarounds: the stand-in feed has no blocks
def test_only_the_block_neighbour_at_the_shared_terminal_counts(wmata: Feed, wmata_paths: TripPaths,
                                                                 real_wmata_dir: Path) -> None:
    avl = read_avl(real_wmata_dir / "wmata_avl.csv").sort_values(["vehicle_id", "time_s"]).reset_index(drop=True)
    day0 = _service_start(avl, wmata.timezone)
    truth = avl["trip_id"].to_numpy(dtype=str)
    seq = _block_sequences(wmata)
    # a recorded turnaround: the last ping of trip A and the first of the block's next trip B
    vehicle = avl["vehicle_id"].to_numpy(dtype=str)
    change = np.flatnonzero((truth[1:] != truth[:-1]) & (vehicle[1:] == vehicle[:-1])
                            & (truth[1:] != "") & (truth[:-1] != "")) + 1
    nxt = {}
    for (_, service), group in seq.groupby(["block_id", "service_id"]):
        ids = group.index.to_numpy(dtype=str)
        nxt.update({(a, service): b for a, b in itertools.pairwise(ids)})
    pairs = [(i - 1, i) for i in change
             if nxt.get((truth[i - 1], seq.at[truth[i - 1], "service_id"])) == truth[i]]
    assert len(pairs) >= 20  # WMATA's blocks: dozens of turnarounds that day
    before = np.array([a for a, _ in pairs])
    after = np.array([b for _, b in pairs])

    # the ping before the change, given the block's next trip: right up to the convention where the
    # bus stands at the terminal, and only there
    given = truth.copy()
    given[before] = truth[after]
    either = turnaround_neighbours(wmata, wmata_paths, avl, truth, day0, given, day0)
    stops = wmata.stops.set_index("stop_id")
    last_stop = wmata.stop_times.sort_values("stop_sequence").groupby("trip_id")["stop_id"].last()
    xy = wmata_paths.projection.to_xy(avl["lat"].to_numpy()[before], avl["lon"].to_numpy()[before])
    end = stops.loc[last_stop.loc[truth[before]].to_numpy(dtype=str)]
    end_xy = wmata_paths.projection.to_xy(end["stop_lat"].to_numpy(), end["stop_lon"].to_numpy())
    first_stop = wmata.stop_times.sort_values("stop_sequence").groupby("trip_id")["stop_id"].first()
    start = stops.loc[first_stop.loc[truth[after]].to_numpy(dtype=str)]
    start_xy = wmata_paths.projection.to_xy(start["stop_lat"].to_numpy(), start["stop_lon"].to_numpy())
    near = np.minimum(np.hypot(*(xy - end_xy).T), np.hypot(*(xy - start_xy).T)) <= TURNAROUND_M
    assert near.mean() > 0.8  # most recorded changes happen at the terminal
    np.testing.assert_array_equal(either[before], near)
    assert not np.delete(either, before).any()  # a trip given as recorded is not a neighbour

    # the same pings given the right trip on another service day, or a trip two steps on: wrong
    assert not turnaround_neighbours(wmata, wmata_paths, avl, truth, day0, given, day0 + 86400.0).any()
    two_on = truth.copy()
    skip = [k for k, b in enumerate(after) if (truth[b], seq.at[truth[b], "service_id"]) in nxt]
    two_on[before[skip]] = [nxt[(truth[after[k]], seq.at[truth[after[k]], "service_id"])] for k in skip]
    assert len(skip) and not turnaround_neighbours(wmata, wmata_paths, avl, truth, day0, two_on, day0).any()
    # and a feed without blocks has no turnarounds
    unblocked = dataclasses.replace(wmata, trips=wmata.trips.assign(block_id=""))
    assert not turnaround_neighbours(unblocked, wmata_paths, avl, truth, day0, given, day0).any()

    # a ping far from any terminal, given its trip's next one: not a turnaround
    mid = np.flatnonzero(~either & (truth != ""))
    given_mid = truth.copy()
    movable = [i for i in mid if (truth[i], seq.at[truth[i], "service_id"]) in nxt][:200]
    given_mid[movable] = [nxt[(truth[i], seq.at[truth[i], "service_id"])] for i in movable]
    flagged = turnaround_neighbours(wmata, wmata_paths, avl, truth, day0, given_mid, day0)[movable]
    xy_mid = wmata_paths.projection.to_xy(avl["lat"].to_numpy()[movable], avl["lon"].to_numpy()[movable])
    end_mid = stops.loc[last_stop.loc[truth[movable]].to_numpy(dtype=str)]
    far = np.hypot(*(xy_mid - wmata_paths.projection.to_xy(end_mid["stop_lat"].to_numpy(),
                                                           end_mid["stop_lon"].to_numpy())).T) > 2 * TURNAROUND_M
    assert far.any() and not flagged[far].any()



@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 6), data=st.data())
def test_turnaround_scoring_survives_any_input(wmata: Feed, wmata_paths: TripPaths, n: int, data: st.DataObject) -> None:
    """Unknown or blank trips, NaN or mismatched service days, pings anywhere: a boolean per ping,
    never an error, and never True where the trips are not two of one block."""
    ids = [*wmata.trips["trip_id"].head(20).tolist(), "", "no-such-trip"]
    trip = st.sampled_from(ids)
    truth = np.array(data.draw(st.lists(trip, min_size=n, max_size=n)), dtype=str)
    got = np.array(data.draw(st.lists(trip, min_size=n, max_size=n)), dtype=str)
    day = st.sampled_from([0.0, 86400.0, float("nan")])
    truth_day = np.array(data.draw(st.lists(day, min_size=n, max_size=n)), dtype=np.float64)
    got_day = np.array(data.draw(st.lists(day, min_size=n, max_size=n)), dtype=np.float64)
    stops = wmata.stops.sample(max(n, 1), replace=True, random_state=n)
    avl = pd.DataFrame({"lat": stops["stop_lat"].to_numpy()[:n], "lon": stops["stop_lon"].to_numpy()[:n]})
    out = turnaround_neighbours(wmata, wmata_paths, avl, truth, truth_day, got, got_day)
    assert out.dtype == bool and out.shape == (n,)
    blocks = wmata.trips.set_index("trip_id")["block_id"]
    for k in np.flatnonzero(out):
        assert truth[k] != got[k] and truth_day[k] == got_day[k]
        assert blocks.get(truth[k], "") == blocks.get(got[k], "") != ""
