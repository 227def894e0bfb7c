"""The in-memory TTI series and the bucketing of the history route (pure logic)."""

from __future__ import annotations

import numpy as np
import pytest

from traffic.tti_history import TtiSeries, bucket_means, default_step_s, iso_times


def test_series_keeps_order_bounded_age_and_the_last_value_of_a_time() -> None:
    s = TtiSeries(max_age_s=100.0)
    for t in (10.0, 20.0, 30.0):
        s.append(t, 1.0 + t / 100)
    s.append(15.0, 1.5)  # late sample lands in order
    s.append(20.0, 2.0)  # same time: replaced
    s.append(40.0, float("nan"))  # ignored
    s.append(45.0, 0.0)  # ignored
    t, v = s.window(0.0)
    assert t.tolist() == [10.0, 15.0, 20.0, 30.0] and v.tolist() == [1.1, 1.5, 2.0, 1.3]
    s.append(125.0, 1.0)  # 10 and 15 are now older than 100 s before the newest
    assert s.window(0.0)[0].tolist() == [30.0, 125.0] and len(s) == 2
    s.extend([200.0, 150.0], [1.2, 1.1])
    assert s.window(140.0)[0].tolist() == [150.0, 200.0]
    assert s.window(140.0, 200.0)[0].tolist() == [150.0]


def test_bucket_means_align_on_the_epoch_and_skip_empty_buckets() -> None:
    t = np.array([0.0, 30.0, 59.0, 60.0, 200.0])
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    bt, bv = bucket_means(t, v, 60)
    assert bt.tolist() == [0.0, 60.0, 180.0] and bv.tolist() == pytest.approx([2.0, 4.0, 5.0])
    assert bucket_means([], [], 60)[0].size == 0
    with pytest.raises(ValueError):
        bucket_means(t, v, 0)
    assert default_step_s(24 * 3600, 720) == 121 and default_step_s(10, 720) == 1
    week = np.arange(0.0, 7 * 86400, 30.0) + 17.0  # not aligned on the buckets
    assert len(bucket_means(week, np.ones(len(week)), default_step_s(7 * 86400, 720))[0]) <= 720


def test_iso_times_are_utc_seconds() -> None:
    assert iso_times([0.0, 1_700_000_000.9]) == ["1970-01-01T00:00:00Z", "2023-11-14T22:13:20Z"]
