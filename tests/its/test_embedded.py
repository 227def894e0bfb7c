"""With both URLs unset the platform starts a real embedded PostgreSQL and Mosquitto."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from its.collector import Collector
from its.db import Database, migrate
from its.devices import DEVICE_STATUS_ROUTE
from its.mqtt import connect
from its.runtime import start_runtime
from its.settings import load_settings

from .helpers import wait_for

pytestmark = pytest.mark.embedded


def test_embedded_postgres_and_mosquitto_carry_telemetry(tmp_path: Path) -> None:
    assert not os.environ.get("ITS_DATABASE_URL") and not os.environ.get("ITS_MQTT_URL"), \
        "run with ITS_DATABASE_URL and ITS_MQTT_URL unset (make test-embedded)"
    settings = load_settings(data_dir=tmp_path / "data")
    rt = start_runtime(settings)
    try:
        assert rt.database_kind == "embedded" and rt.broker_kind == "mosquitto"
        conf = (tmp_path / "data" / "mosquitto" / "mosquitto.conf").read_text()
        assert "max_queued_messages 5000000" in conf and "127.0.0.1" in conf and "persistence true" in conf
        db = Database(rt.settings.database_url or "")
        assert migrate(db)
        version = db.fetchall("SHOW server_version_num")[0][0]
        assert int(version) >= 150000
        collector = Collector(rt.settings, db, [DEVICE_STATUS_ROUTE], client_id="embedded-test")
        collector.start()
        pub = connect(rt.settings.mqtt_url or "", "embedded-pub")
        for i in range(100):
            pub.client.publish(f"its/v1/devices/sensor/d{i}/status",
                               orjson.dumps({"online": True, "ts": 1_700_000_000 + i}), qos=1).wait_for_publish(10)
        pub.close()
        assert wait_for(lambda: db.fetchall("SELECT count(*) FROM device_status")[0][0] == 100, 30)
        collector.stop()
        db.close()
    finally:
        rt.stop()
    # a second run reuses the same data directory (and the same cluster)
    rt2 = start_runtime(settings)
    try:
        db = Database(rt2.settings.database_url or "")
        assert migrate(db) == []
        assert db.fetchall("SELECT count(*) FROM device_status")[0][0] == 100
        db.close()
    finally:
        rt2.stop()
