"""Collector processes SIGKILLed mid-stream; two collectors sharing a subscription."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from its.broker import MosquittoBroker
from its.db import Database
from its.mqtt import MqttConnection

from .conftest import (
    CollectorProcess,
    assert_exactly_once,
    count_sensor_rows,
    publish_statuses,
    wait_count,
    wait_subscribed,
)


def _count(db: Database) -> int:
    return count_sensor_rows(db)


def test_collector_sigkill_mid_batch_then_restart(tmp_path: Path, db_url: str, db: Database,
                                                  own_broker: MosquittoBroker, publisher: MqttConnection) -> None:
    col = CollectorProcess(tmp_path, db_url, own_broker.url, "fault-kill")
    col.start()
    try:
        wait_subscribed(db, publisher)
        # published while the collector runs, so the kill lands mid-stream however fast it stores
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(publish_statuses, publisher, 0, 20_000, pace_s=0.0002)
            assert wait_count(db, 1000, 60)
            col.kill()  # mid-stream: some rows committed, some received and not acknowledged
            killed_at = _count(db)
            sending.result(timeout=180)  # every message acknowledged by the broker (queued for the collector)
        assert killed_at < 20_000, "collector finished before it could be killed"
        col.start()
        assert wait_count(db, 20_000, 120), col.log.read_text()[-2000:]
        time.sleep(1.0)
    finally:
        col.stop()
    assert_exactly_once(db, 20_000)


def test_two_collectors_share_and_survive_one_sigkill(tmp_path: Path, db_url: str, db: Database,
                                                      own_broker: MosquittoBroker, publisher: MqttConnection) -> None:
    a = CollectorProcess(tmp_path, db_url, own_broker.url, "fault-share-a")
    b = CollectorProcess(tmp_path, db_url, own_broker.url, "fault-share-b")
    a.start()
    b.start()
    try:
        wait_subscribed(db, publisher)
        time.sleep(3.0)
        publish_statuses(publisher, 0, 4000, pace_s=0.0002)
        assert wait_count(db, 4000, 60)
        b.kill()
        before = _count(db)
        publish_statuses(publisher, 4000, 4000, pace_s=0.0002)
        # the survivor carries on with its share while b is away...
        assert wait_count(db, before + 1500, 60)
        # ...and b's queued share is delivered when its supervisor restarts it (Mosquitto keeps
        # a persistent shared-subscription member's share for it; see README: reliability)
        b.start()
        assert wait_count(db, 8000, 90)
        time.sleep(1.0)
    finally:
        a.stop()
        b.stop()
    assert_exactly_once(db, 8000)
    # both processes did real work
    assert "Traceback" not in a.log.read_text()
