"""With both URLs unset the platform starts a real embedded PostgreSQL and Mosquitto."""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest

from its.broker import reload_running_broker, url_with_credentials
from its.collector import Collector
from its.db import Database, migrate
from its.device_registry import add_device, write_broker_auth
from its.devices import DEVICE_STATUS_ROUTE, device_status_topic
from its.mqtt import connect
from its.runtime import start_runtime
from its.settings import load_settings

from .helpers import T0, wait_for

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
        # the embedded broker authenticates: the runtime's URL carries the platform account
        broker = rt._broker
        assert "@" in (rt.settings.mqtt_url or "") and broker.device_url
        with pytest.raises(ConnectionError):
            connect(broker.url, "anonymous", timeout_s=3, prefer_v5=False)
        collector = Collector(rt.settings.model_copy(update={"mqtt_url": broker.account_url("collector")}), db,
                              [DEVICE_STATUS_ROUTE], client_id="its-embedded-test")
        collector.start()
        # a simulator's account publishes for any parking sensor
        pub = connect(broker.account_url("publisher-parking"), "its-embedded-pub")
        for i in range(99):
            pub.client.publish(device_status_topic("parking-sensor", f"lot.d{i}"),
                               orjson.dumps({"online": True, "ts": T0 + i}), qos=1).wait_for_publish(10)
        pub.close()
        # a registered device connects on the device listener once the broker reloaded its files
        password = add_device(db, "lot.d99", "parking-sensor")
        write_broker_auth(db, tmp_path / "data" / "broker-auth")
        assert reload_running_broker(tmp_path / "data" / "mosquitto")
        time.sleep(0.5)
        device = connect(url_with_credentials(broker.device_url, "lot.d99", password), "")
        device.publish(device_status_topic("parking-sensor", "lot.d99"),
                       orjson.dumps({"online": True, "ts": T0 + 99})).wait_for_publish(10)
        device.close()
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
