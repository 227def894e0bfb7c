"""Smoke test on the services the environment points at (``ITS_MQTT_URL``, ``ITS_DATABASE_URL``).

Message-counting tests start their own broker with the platform's queue limits; this one uses
the machine's broker as configured (possibly Mosquitto's defaults), so its publisher is paced.
"""

from __future__ import annotations

import os
import time

import orjson
import pytest
from fastapi.testclient import TestClient

from its.app.factory import build_context, create_app
from its.collector import Collector
from its.db import Database
from its.devices import DEVICE_STATUS_ROUTE
from its.mqtt import connect, drop_session
from its.settings import load_settings

from .helpers import T0, wait_for

MACHINE_MQTT = os.environ.get("ITS_MQTT_URL")


@pytest.mark.skipif(not MACHINE_MQTT, reason="ITS_MQTT_URL not set (the embedded run covers the defaults)")
def test_collector_and_api_on_the_machine_broker(db_url: str, db: Database, tmp_path: object) -> None:
    settings = load_settings(database_url=db_url, mqtt_url=MACHINE_MQTT, data_dir=f"{tmp_path}/data")
    run = f"machine{time.time_ns() % 10**8}"
    # not in the shared group: other sessions on a machine broker may be members of it
    collector = Collector(settings, db, [DEVICE_STATUS_ROUTE], client_id=f"{run}-collector", shared=False)
    collector.start()
    try:
        pub = connect(MACHINE_MQTT or "", f"{run}-pub")
        for i in range(500):
            pub.publish(f"its/v1/devices/{run}/d{i % 10}/status",
                        orjson.dumps({"online": True, "ts": T0 + i})).wait_for_publish(10)
            time.sleep(0.002)  # paced: the machine broker may have Mosquitto's default queue limits
        pub.close()
        assert wait_for(lambda: db.fetchall("SELECT count(*) FROM device_status WHERE kind = %s", (run,))[0][0] == 500, 30)
    finally:
        collector.stop()
        drop_session(MACHINE_MQTT or "", f"{run}-collector")  # leave no queue behind on a shared broker
    ctx = build_context(settings)
    with TestClient(create_app(settings, [], context=ctx)) as client:
        assert wait_for(lambda: client.get("/readyz").status_code == 200, 120)
        assert client.get("/readyz").json()["checks"]["broker"] is True
    if ctx.live:
        ctx.live.close()
    ctx.db.close()
