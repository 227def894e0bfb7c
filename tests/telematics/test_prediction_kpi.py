"""The ETA Accuracy Benchmark and trip-minute prediction completeness (`telematics.prediction_kpi`).

Pure-function checks (bucket edges, inclusive thresholds, the sign convention, a brute-force
count of covered minutes) and the eval on the WMATA day's route D96 (the stand-in without
``../shared``), recomputed independently from the replayed predictions.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from telematics.avl import read_avl
from telematics.completeness import trip_minute_coverage
from telematics.evaluate import evaluate_arrivals, replay_predictions, score_predictions
from telematics.gtfs import read_feed, trip_paths
from telematics.prediction_kpi import (
    ETA_BENCHMARK_WINDOWS,
    eta_benchmark,
    eta_benchmark_score,
    prediction_completeness,
)


def test_benchmark_windows_and_edges() -> None:
    assert ETA_BENCHMARK_WINDOWS == ((0, 180, -30, 90), (180, 360, -60, 150), (360, 600, -60, 210),
                                     (600, 900, -90, 270))
    # time to actual at each bucket start (inclusive) and just below its end (exclusive)
    t = np.array([0.0, 179.9, 180.0, 359.9, 360.0, 599.9, 600.0, 899.9, 900.0])
    table = eta_benchmark(t, np.zeros_like(t))
    assert table["predictions"].tolist() == [2, 2, 2, 2]  # 900 s is outside the benchmark
    # thresholds are inclusive: exactly 30 s early and 90 s late are accurate in 0-3 min
    e = np.array([-30.0, 90.0, -30.5, 90.5])
    assert eta_benchmark(np.full(4, 60.0), e)["accurate"].tolist() == [2, 0, 0, 0]


def test_early_is_the_tight_side() -> None:
    """A bus 60 s *earlier* than predicted (error -60) misses the 0-3 min band (-30 s), one 60 s
    later than predicted (+60) is accurate: the benchmark penalises early arrivals."""
    t = np.array([100.0, 100.0])
    got = eta_benchmark(t, np.array([-60.0, 60.0]))
    assert got.loc[0, "accurate"] == 1 and got.loc[0, "accuracy"] == 0.5
    # the same errors against the MBTA 0-3 window (+-60 s) both count: the windows differ
    assert eta_benchmark(np.array([400.0]), np.array([-61.0]))["accurate"].sum() == 0
    assert eta_benchmark(np.array([400.0]), np.array([200.0]))["accurate"].sum() == 1


def test_score_is_the_unweighted_mean_and_undefined_with_an_empty_bucket() -> None:
    # 0-3 min: 1 of 4 accurate; every other bucket: 1 of 1
    t = np.array([10.0, 20.0, 30.0, 40.0, 200.0, 400.0, 700.0])
    e = np.array([0.0, 500.0, 500.0, 500.0, 0.0, 0.0, 0.0])
    assert eta_benchmark_score(t, e) == (0.25 + 1 + 1 + 1) / 4  # not 4/7 as a pooled share would be
    assert eta_benchmark_score(t[:5], e[:5]) is None
    assert eta_benchmark_score([], []) is None
    # in the eval's JSON an empty bucket is null, not NaN (which is not JSON)
    scored = score_predictions(t[:5] - e[:5], e[:5])
    assert scored["eta_benchmark"] == {"score": None, "by_bucket": {"0-3": 0.25, "3-6": 1.0, "6-10": None, "10-15": None}}
    # a prediction for a bus that had already passed (t < 0) counts in 0-3 min
    assert eta_benchmark(np.array([-20.0]), np.array([-200.0]))["predictions"].tolist() == [1, 0, 0, 0]


def _brute(start: list[float], end: list[float], trip: list[int], issued: list[float], max_age: float) -> tuple[int, int]:
    covered = total = 0
    for k, (a, b) in enumerate(zip(start, end, strict=True)):
        for m in range(int(np.floor(a / 60)), int(np.floor(b / 60)) + 1):
            total += 1
            covered += any(t == k and m * 60 + 60 - max_age <= s < m * 60 + 60
                           for t, s in zip(trip, issued, strict=True))
    return covered, total


@settings(max_examples=200, deadline=None)
@given(spans=st.lists(st.tuples(st.floats(0, 3000), st.floats(0, 900)), min_size=0, max_size=4),
       preds=st.lists(st.tuples(st.integers(-1, 4), st.floats(-200, 4200)), max_size=30),
       max_age=st.sampled_from([60.0, 90.0, 120.0, 300.0]))
def test_trip_minutes_equal_a_brute_force_count(spans: list[tuple[float, float]], preds: list[tuple[int, float]],
                                                 max_age: float) -> None:
    start = [a for a, _ in spans]
    end = [a + d for a, d in spans]
    trip = [t for t, _ in preds]
    issued = [s for _, s in preds]
    assert trip_minute_coverage(start, end, trip, issued, max_age) == _brute(start, end, trip, issued, max_age)


def test_completeness_of_a_trip_with_sparse_predictions() -> None:
    # in service from 100 s to 400 s: minutes 1..6; predictions at 130 s and 300 s
    assert prediction_completeness([100.0], [400.0], [0, 0], [130.0, 300.0]) == (4 / 6, 6)
    assert prediction_completeness([100.0], [400.0], [0, 0], [130.0, 300.0], max_age_s=60.0) == (2 / 6, 6)
    assert prediction_completeness([100.0], [400.0], [0, 0], [130.0, 300.0], period=(200.0, 300.0)) == (0.5, 2)
    assert prediction_completeness([], [], [], []) == (None, 0)


@functools.cache
def _d96_eval(wmata_dir: Path) -> tuple[dict[str, object], dict[str, np.ndarray]]:
    """The eval on route D96's buses (the stand-in's busiest route without ../shared) and its replay."""
    from tests.telematics.core_fixtures import pick

    avl = read_avl(wmata_dir / "wmata_avl.csv")
    route = pick(avl["route_id"], "D96")
    vehicles = sorted(avl.loc[avl["route_id"] == route, "vehicle_id"].unique())
    result = evaluate_arrivals(wmata_dir / "wmata_gtfs.zip", wmata_dir / "wmata_avl.csv", vehicles=vehicles,
                               assign=False)
    feed = read_feed(wmata_dir / "wmata_gtfs.zip")
    cols = replay_predictions(feed, trip_paths(feed), avl[avl["vehicle_id"].isin(vehicles)].reset_index(drop=True))
    return result, cols


def test_eval_reports_the_benchmark_beside_the_mbta_windows(wmata_dir: Path) -> None:
    """The eval's benchmark equals one recomputed from the replayed predictions."""
    result, cols = _d96_eval(wmata_dir)
    bench = result["eta_benchmark"]
    assert isinstance(bench, dict) and list(bench["by_bucket"]) == ["0-3", "3-6", "6-10", "10-15"]
    error = cols["truth"] - cols["pred"]
    to_actual = cols["truth"] - cols["now"]
    by_hand = []
    for lo, hi, early, late in ((0, 180, -30, 90), (180, 360, -60, 150), (360, 600, -60, 210), (600, 900, -90, 270)):
        m = (to_actual < hi) & ((to_actual >= lo) if lo else True)
        assert m.sum() > 500
        by_hand.append(float(((error[m] >= early) & (error[m] <= late)).mean()))
    assert bench["by_bucket"] == {k: round(v, 4) for k, v in zip(bench["by_bucket"], by_hand, strict=True)}
    assert bench["score"] == round(float(np.mean(by_hand)), 4)
    assert 0.5 < bench["score"] < 1.0
    minutes = result["trip_minute_completeness"]
    assert isinstance(minutes, float) and 0.9 < minutes <= 1.0


@pytest.mark.eval  # accuracy on the real day (on the stand-in's simulated buses delay propagation scores 0.92, the model 0.83)
def test_model_beats_both_baselines_on_the_benchmark(real_wmata_dir: Path) -> None:
    result, _ = _d96_eval(real_wmata_dir)
    bench, base = result["eta_benchmark"], result["baselines"]
    assert isinstance(bench, dict) and isinstance(base, dict)
    assert bench["score"] > base["delay_propagation"]["eta_benchmark"]["score"] + 0.03
    assert base["delay_propagation"]["eta_benchmark"]["score"] > base["schedule"]["eta_benchmark"]["score"]
