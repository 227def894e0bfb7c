"""Platform indicators over messages that went through the real broker and collector."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd

from its.collector import Collector
from its.composition import domain_routes
from its.db import Database
from its.mqtt import connect
from its.reports import platform
from its.settings import Settings


def test_stored_and_rejected_per_feed_through_the_collector(settings: Settings, db: Database,
                                                            shared_data: Path) -> None:
    avl = pd.read_csv(shared_data / "avl" / "wmata" / "wmata_avl.csv", dtype=str, nrows=40)
    collector = Collector(settings, db, domain_routes(), client_id="report-platform")
    collector.start()
    assert settings.mqtt_url
    pub = connect(settings.mqtt_url, "report-platform-pub")
    now = datetime.now(UTC).replace(microsecond=0)
    sent = {"vehicle_positions": 0, "camera_counts": 0}
    try:
        for k, r in enumerate(avl.to_dict("records")):
            payload = {"ts": (now - timedelta(seconds=30 * k)).isoformat(), "lat": float(r["lat"]),
                       "lon": float(r["lon"])}
            pub.publish(f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload), qos=1
                        ).wait_for_publish(5)
            sent["vehicle_positions"] += 1
        bad = [("its/v1/vehicles/wmata/1/position", b'{"ts": "soon", "lat": 1, "lon": 2}'),
               ("its/v1/vehicles/wmata/2/position", b"not json"),
               ("its/v1/cameras/cam-9/counts", b'{"interval_start": 0}')]
        for topic, payload in bad:
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        pub.publish("its/v1/cameras/cam-9/counts", orjson.dumps(
            {"interval_start": now.isoformat(), "interval_s": 60, "line_id": "l", "direction": "in",
             "vehicle_class": "car", "count": 3}), qos=1).wait_for_publish(5)
        sent["camera_counts"] += 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stored = db.fetchall("SELECT (SELECT count(*) FROM vehicle_positions) + (SELECT count(*) FROM"
                                 " traffic_counts) + (SELECT count(*) FROM rejected_messages)")[0][0]
            if stored >= 44:
                break
            time.sleep(0.2)
    finally:
        pub.close()
        collector.stop()
    kpi = platform.section(db, now - timedelta(hours=1), now + timedelta(hours=1), domain_routes())
    msgs = kpi["messages_per_feed"]["rows"].set_index("feed")
    assert msgs.loc["vehicle_positions", "ingested"] == sent["vehicle_positions"] == 40
    assert msgs.loc["vehicle_positions", "rejected"] == 2
    assert msgs.loc["camera_counts", "ingested"] == 1
    assert msgs.loc["camera_counts", "rejected"] == 1
    assert msgs.loc["vehicle_positions", "rejected_share"] == 2 / 42
    assert msgs.loc["parking_counts", "ingested"] == 0
