"""Mosquitto's default queue limit loses QoS 1 messages for a subscriber that is away; ours does not."""

from __future__ import annotations

import time
from pathlib import Path

from its.broker import MosquittoBroker
from its.mqtt import connect


def _received_after_backlog(tmp: Path, queue_limits: bool, n: int) -> int:
    broker = MosquittoBroker(tmp, queue_limits=queue_limits)
    broker.start()
    try:
        got = [0]
        sub = connect(broker.url, "slow-sub", persistent=True,
                      on_message=lambda *_: got.__setitem__(0, got[0] + 1))
        sub.subscribe("its/v1/vehicles/#", 1)
        time.sleep(0.2)
        sub.close()  # the subscriber falls behind (here: is away)
        pub = connect(broker.url, "burst-pub")
        for i in range(n):
            pub.publish(f"its/v1/vehicles/a/v{i % 10}/position", b'{"ts":1}').wait_for_publish(10)
        pub.close()
        sub = connect(broker.url, "slow-sub", persistent=True,
                      on_message=lambda *_: got.__setitem__(0, got[0] + 1))
        deadline = time.monotonic() + 20
        last, stable = -1, 0
        while time.monotonic() < deadline and stable < 10:
            stable = stable + 1 if got[0] == last else 0
            last = got[0]
            time.sleep(0.1)
        sub.close()
        return got[0]
    finally:
        broker.stop()


def test_default_mosquitto_config_drops_and_ours_does_not(tmp_path: Path) -> None:
    n = 3000
    default = _received_after_backlog(tmp_path / "default", queue_limits=False, n=n)
    ours = _received_after_backlog(tmp_path / "ours", queue_limits=True, n=n)
    assert default < n  # Mosquitto's max_queued_messages 1000 silently drops the rest
    assert ours == n
