from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from video.aggregate import IntervalAggregator, SpeedTrap


def _ids(*v: int) -> np.ndarray:
    return np.array(v, dtype=np.int64)


def test_counts_per_interval_with_zero_rows_and_speed() -> None:
    agg = IntervalAggregator(["a", "b"], 60, [SpeedTrap("a", "b", 20.0)])
    t0 = 1_700_000_020.0  # 22:13:40 UTC, 40 s into a minute
    agg.add_crossings(t0, "a", "in", _ids(1, 2), _ids(0, 1))
    agg.add_crossings(t0 + 1.0, "b", "in", _ids(1), _ids(0))  # 20 m in 1 s = 72 km/h
    agg.add_crossings(t0 + 2.0, "b", "in", _ids(2), _ids(1))  # 36 km/h
    agg.add_occupancy(t0 + 5, 6.0, {"a": True, "b": False})
    assert agg.flush(t0 + 10) == []  # the minute is still open
    agg.add_crossings(t0 + 25.0, "a", "out", _ids(3), _ids(2))  # next minute
    records = agg.flush(t0 + 25)
    assert len(records) == 2 * 2 * 3
    assert {r.interval_start for r in records} == {datetime(2023, 11, 14, 22, 13, tzinfo=UTC)}
    by = {(r.line_id, r.direction, r.vehicle_class): r for r in records}
    assert by[("a", "in", "car")].count == 1 and by[("a", "in", "truck_bus")].count == 1
    assert by[("b", "in", "car")].mean_speed_kmh == pytest.approx(72.0)
    assert by[("b", "in", "truck_bus")].mean_speed_kmh == pytest.approx(36.0)
    assert by[("a", "out", "car")].count == 0 and by[("a", "in", "car")].mean_speed_kmh is None
    assert by[("a", "in", "car")].occupancy == pytest.approx(0.1)
    assert by[("b", "in", "car")].occupancy == 0.0
    payload = by[("b", "in", "car")].payload()
    assert payload["interval_start"] == "2023-11-14T22:13:00Z" and payload["mean_speed_kmh"] == 72.0
    final = agg.flush(t0 + 30, final=True)
    assert sum(r.count for r in final) == 1 and final[0].interval_start.minute == 14


def test_bad_configuration() -> None:
    with pytest.raises(ValueError, match="unknown line"):
        IntervalAggregator(["a"], 60, [SpeedTrap("a", "z", 10)])
    with pytest.raises(ValueError):
        SpeedTrap("a", "b", 0)


def test_late_crossings_are_not_re_emitted() -> None:
    agg = IntervalAggregator(["a"], 60)
    agg.add_crossings(1_700_000_000.0, "a", "in", _ids(1), _ids(0))
    first = agg.flush(1_700_000_100.0)
    assert sum(r.count for r in first) == 1
    agg.add_crossings(1_700_000_001.0, "a", "in", _ids(2), _ids(0))  # same, closed minute
    later = agg.flush(1_700_000_200.0)  # quiet minutes since then give zero rows
    assert agg.late_crossings == 1 and sum(r.count for r in later) == 0
    assert first[0].interval_start not in {r.interval_start for r in later}
