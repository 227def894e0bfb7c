"""Settings validation names the variable; the amqtt last resort works and says what it lacks."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest

from its.broker import (
    MESSAGE_SIZE_LIMIT,
    QUEUE_LIMITS,
    AmqttBroker,
    MosquittoBroker,
    mosquitto_config,
)
from its.collector import Collector
from its.db import Database
from its.devices import DEVICE_STATUS_ROUTE
from its.mqtt import connect
from its.settings import SettingsError, load_settings, mqtt_endpoint

from .helpers import T0, wait_for


def test_invalid_settings_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITS_API_PORT", "eighty")
    monkeypatch.setenv("ITS_MQTT_URL", "http://broker:1883")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "ITS_API_PORT" in str(exc.value) and "ITS_MQTT_URL" in str(exc.value)


def test_mqtt_urls_with_credentials_and_tls() -> None:
    assert mqtt_endpoint("mqtts://dev:s3cret@broker.example:8884") == ("broker.example", 8884, True, "dev", "s3cret")
    assert mqtt_endpoint("mqtt://127.0.0.1") == ("127.0.0.1", 1883, False, None, None)
    assert load_settings(mqtt_url="mqtts://h:8883", database_read_url="postgresql://r/x").database_read_url


def test_shipped_broker_config_raises_queue_limits() -> None:
    conf = mosquitto_config(1883, Path("/tmp/x"))
    assert "max_queued_messages 5000000" in conf and "persistence true" in conf and "listener 1883 127.0.0.1" in conf
    assert "max_queued_messages" not in mosquitto_config(1883, Path("/tmp/x"), queue_limits=False)


def _options(conf: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in conf.splitlines() if line.strip() and not line.startswith("#"))


def test_every_shipped_broker_config_bounds_message_size_and_queue_bytes() -> None:
    repo = Path(__file__).resolve().parents[2]
    shipped = {"embedded": mosquitto_config(1883, Path("/tmp/x")),
               **{str(p.relative_to(repo)): p.read_text() for p in sorted(repo.glob("**/*.conf"))
                  if ".git" not in p.parts and "mosquitto" in p.read_text()}}
    assert "deploy/mosquitto/mosquitto.conf" in shipped
    for name, conf in shipped.items():
        opts = _options(conf)
        assert int(opts["message_size_limit"]) == MESSAGE_SIZE_LIMIT > load_settings().max_payload_bytes, name
        assert int(opts["max_queued_bytes"]) == QUEUE_LIMITS["max_queued_bytes"] > 0, name
        assert int(opts["max_queued_messages"]) == 5_000_000, name


def test_broker_discards_messages_over_the_size_limit(tmp_path: Path) -> None:
    """The limit is enforced by the Mosquitto we run: over it nothing is forwarded; under it a
    message too large for the collector still arrives (and is dead-lettered there)."""
    broker = MosquittoBroker(tmp_path / "broker")
    broker.start()
    got: list[int] = []
    try:
        sub = connect(broker.url, "size-sub", on_message=lambda _c, _u, m: got.append(len(m.payload)))
        sub.subscribe("its/v1/#", 1)
        time.sleep(0.3)
        for v5 in (True, False):  # v5: the publisher is disconnected; 3.1.1: the message is dropped
            big = connect(broker.url, f"big-{v5}", prefer_v5=v5)
            big.publish("its/v1/vehicles/a/b/position", b"x" * (MESSAGE_SIZE_LIMIT + 1))
            time.sleep(0.5)
            big.close()
        pub = connect(broker.url, "size-pub")
        for size in (100 * 1024, 10):
            pub.publish("its/v1/vehicles/a/b/position", b"x" * size).wait_for_publish(10)
        assert wait_for(lambda: len(got) >= 2, 10)
        time.sleep(0.5)
        pub.close()
        sub.close()
    finally:
        broker.stop()
    assert got == [100 * 1024, 10]


def test_amqtt_fallback_speaks_311_and_still_collects(tmp_path: Path, db: Database, db_url: str) -> None:
    broker = AmqttBroker(tmp_path / "amqtt")
    broker.start()
    try:
        conn = connect(broker.url, "probe")
        assert conn.protocol == mqtt.MQTTv311  # v5 refused, 3.1.1 fallback
        conn.close()
        settings = load_settings(database_url=db_url, mqtt_url=broker.url, data_dir=tmp_path / "data")
        collector = Collector(settings, db, [DEVICE_STATUS_ROUTE], client_id="amqtt-collector")
        collector.start()  # no shared subscriptions on 3.1.1: subscribes plainly, and says so
        pub = connect(broker.url, "amqtt-pub")
        for i in range(50):
            pub.publish(f"its/v1/devices/sensor/a{i}/status", orjson.dumps({"online": True, "ts": T0 + i})).wait_for_publish(10)
        pub.close()
        assert wait_for(lambda: db.fetchall("SELECT count(*) FROM device_status")[0][0] == 50, 30)
        collector.stop()
    finally:
        broker.stop()
