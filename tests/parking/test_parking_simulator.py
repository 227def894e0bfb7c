"""The simulator's messages are valid, realistic and bounded; the replay follows the history."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from its.devices import parse_device_status
from parking.cleaning import read_history_csv
from parking.ingest import parse_count, parse_space
from parking.simulator import occupancy_target, replay_schedule, run_replay, run_simulation
from parking.sites import read_sites

DEMO = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"


class FakeClock:
    """Simulated time so a day of messages takes no wall time."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_profile_curve() -> None:
    assert occupancy_target("office", 3.0) < 0.1
    assert occupancy_target("office", 11.0) > 0.9
    assert occupancy_target("office", 8.5) == pytest.approx((0.70 + 0.88) / 2)


def test_synthetic_day_is_valid_and_follows_the_profile() -> None:
    sites = [s for s in read_sites(DEMO) if s.site_id in ("CNS-CENTRAL", "CNS-ABBOTT")]
    clock = FakeClock(1_764_000_000.0 - 1_764_000_000 % 86400 - 10 * 3600)  # 00:00 Brisbane
    sent: list[tuple[str, bytes, bool]] = []
    n = run_simulation(sites, "office", lambda t, p, r: sent.append((t, p, r)), 86400, 60.0, 7,
                       clock=clock, sleep=clock.sleep)
    assert n == len(sent) > 1000
    occupied_by_hour: dict[int, list[int]] = {}
    status = 0
    abs_count = delta_count = 0
    for topic, payload, retain in sent:
        if "/devices/" in topic:
            (_k, _d, _t, _online), = parse_device_status(topic, payload)
            assert retain
            status += 1
        elif topic.endswith("/counts"):
            (_s, t, occ, entries, exits), = parse_count(topic, payload)
            if occ is not None:
                abs_count += 1
                hour = (int(t.timestamp()) // 3600 + 10) % 24
                occupied_by_hour.setdefault(hour, []).append(occ)
            else:
                delta_count += 1
                assert entries is not None and exits is not None
        else:
            parse_space(topic, payload)
    assert status > 0  # dropouts and recoveries were announced
    assert delta_count > 5 * abs_count > 0
    night = np.mean(occupied_by_hour.get(3, [0]))
    midday = np.mean(occupied_by_hour[11])
    assert midday > 0.75 * 600 and night < 0.2 * 600


def test_replay_schedule_of_birmingham(birmingham_csv: Path) -> None:
    history = read_history_csv(birmingham_csv)
    offsets, topics, occupied = replay_schedule(history, 3600.0)
    assert len(topics) == len(history) > 35_000  # faults are replayed as they are (real: 35 717)
    assert np.all(np.diff(offsets) >= 0)
    span_days = offsets[-1] * 3600 / 86400
    assert 75 < span_days < 77
    assert (occupied < 0).sum() == (history["occupied"] < 0).sum() > 0  # real: 12
    with pytest.raises(ValueError):
        replay_schedule(history, 0)


def test_replay_is_bounded_by_duration(birmingham_csv: Path) -> None:
    clock = FakeClock(1_764_000_000.0)
    sent: list[tuple[str, bytes, bool]] = []
    n = run_replay(birmingham_csv, 86400.0, lambda t, p, r: sent.append((t, p, r)), 3.0,
                   clock=clock, sleep=clock.sleep)
    assert 0 < n == len(sent) < 35_717
    first = orjson.loads(sent[0][1])
    assert first["ts"] == pytest.approx(1_764_000_000.0) and "occupied" in first
    assert clock.now - 1_764_000_000.0 <= 3.0
