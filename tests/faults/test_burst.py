"""A burst of 10x the normal rate for 60 s: nothing lost, lag reported and recovered."""

from __future__ import annotations

import threading
import time

from its.broker import MosquittoBroker
from its.collector import Collector
from its.db import Database
from its.devices import DEVICE_STATUS_ROUTE
from its.mqtt import MqttConnection
from its.settings import Settings

from .conftest import (
    assert_exactly_once,
    expected_keys,
    publish_statuses,
    stored_keys,
    wait_count,
    wait_drained,
)

NORMAL_RATE = 200  # messages/s: a mid-size city's buses and sensors
BURST_S = 60


def _loss_report(db: Database, n: int, collector: Collector) -> str:
    """What a short count is made of: the missing keys, the dead letters and the collector's totals."""
    missing = sorted(expected_keys(n) - set(stored_keys(db)))[:5]
    rejected = db.fetchall("SELECT topic, reason FROM rejected_messages ORDER BY received_at DESC LIMIT 5")
    return f"missing (first 5): {missing}; dead letters (last 5): {rejected}; totals: {collector.totals}"


def test_ten_times_burst_for_a_minute(settings: Settings, db: Database, own_broker: MosquittoBroker,
                                      publisher: MqttConnection) -> None:
    cfg = settings.model_copy(update={"mqtt_url": own_broker.url})
    collector = Collector(cfg, db, [DEVICE_STATUS_ROUTE], client_id="fault-burst")
    collector.start()
    lags: list[float] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            lags.append(collector.lag_s)
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        n_normal = NORMAL_RATE * 5
        publish_statuses(publisher, 0, n_normal, pace_s=1 / NORMAL_RATE)
        burst = NORMAL_RATE * 10 * BURST_S
        started = time.monotonic()
        chunk = NORMAL_RATE * 10  # one second's worth at a time
        for k in range(BURST_S):
            publish_statuses(publisher, n_normal + k * chunk, chunk)
            sleep = started + k + 1 - time.monotonic()
            if sleep > 0:
                time.sleep(sleep)
        total = n_normal + burst
        stored = wait_drained(db, total, stall_s=30)  # drained however slow the machine, as long as it drains
        assert stored >= total, (f"{stored} of {total} stored; the count stopped growing for 30 s; "
                                 f"{_loss_report(db, total, collector)}")
        time.sleep(2.0)
        publish_statuses(publisher, total, NORMAL_RATE, pace_s=1 / NORMAL_RATE)  # back to normal
        assert wait_count(db, total + NORMAL_RATE, 30)
        time.sleep(1.0)
    finally:
        done.set()
        collector.stop()
    assert_exactly_once(db, total + NORMAL_RATE)
    assert max(lags) > 0  # lag is measured and reported (its_ingest_lag_seconds)
    assert collector.lag_s < 2.0, collector.lag_s  # and recovered after the burst
