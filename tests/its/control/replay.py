"""Recorded AVL replayed on the broker faster than real time (the WMATA sample of ``../shared/data``)."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
import pandas as pd

from its.mqtt import connect

SPEEDUP = 20.0
"""Replay speed (recorded seconds per wall-clock second)."""


class Replay:
    """Publishes recorded AVL rows (``epoch`` s, ``timestamp``, ``vehicle_id``, ``lat``, ``lon``,
    ``trip_id``, ``start_date``, ``bearing``, ``speed_mps``) when the replay clock reaches them."""

    def __init__(self, avl: pd.DataFrame, broker_url: str, agency: str = "wmata") -> None:
        self.rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in avl.to_dict("records")]
        self.t0 = float(self.rows[0]["epoch"]) + 60.0
        self.wall0 = time.time()
        self.url = broker_url
        self.agency = agency
        self.stop = threading.Event()
        self.published = 0
        self.thread = threading.Thread(target=self.run, name="avl-replay", daemon=True)

    def clock(self) -> float:
        """Replay time (epoch s): the recording's start + 60 s, running SPEEDUP times faster than the wall clock."""
        return self.t0 + (time.time() - self.wall0) * SPEEDUP

    def run(self) -> None:
        pub = connect(self.url, f"ui-test-replay-{time.time_ns()}")
        try:
            for r in self.rows:
                while r["epoch"] > self.clock():
                    if self.stop.wait(0.05):
                        return
                payload: dict[str, Any] = {"ts": r["timestamp"], "lat": float(r["lat"]), "lon": float(r["lon"]),
                                           "trip_id": r["trip_id"], "start_date": r["start_date"]}
                for field in ("bearing", "speed_mps"):
                    if r[field]:
                        payload[field] = float(r[field])
                pub.client.publish(f"its/v1/vehicles/{self.agency}/{r['vehicle_id']}/position", orjson.dumps(payload), qos=1)
                self.published += 1
        finally:
            pub.close()


def read_avl(csv_path: Any, minutes: float = 30.0) -> pd.DataFrame:
    """The first ``minutes`` of a recorded AVL CSV, time-ordered, with an ``epoch`` column (s)."""
    avl = pd.read_csv(csv_path, dtype=str, keep_default_na=False).sort_values("timestamp")
    # seconds since the epoch whatever the datetime resolution (pandas 3 parses to microseconds)
    avl["epoch"] = (pd.to_datetime(avl["timestamp"], utc=True) - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    avl = avl[avl["epoch"] <= avl["epoch"].iloc[0] + minutes * 60.0]
    return avl.reset_index(drop=True)
