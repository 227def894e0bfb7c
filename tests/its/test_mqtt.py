"""The MQTT edge against a real broker: a subscription is in force when ``subscribe`` returns."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt

from its.mqtt import connect


def test_subscribe_returns_once_the_broker_acknowledged_it(broker_url: str) -> None:
    """A message published the moment ``subscribe`` returns reaches the subscriber: no SUBACK race
    (CI once lost a collector's first reading, published before its subscription was in force)."""
    topic = f"its/v1/test/{uuid.uuid4().hex}"
    received: list[bytes] = []
    arrived = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        received.append(bytes(msg.payload))
        arrived.set()

    publisher = connect(broker_url, f"pub-{uuid.uuid4().hex[:8]}")
    try:
        for k in range(20):  # each round a fresh subscriber, published to at once
            subscriber = connect(broker_url, f"sub-{uuid.uuid4().hex[:8]}", on_message=on_message)
            try:
                arrived.clear()
                assert subscriber.subscribe(f"{topic}/{k}", 1) is True
                publisher.publish(f"{topic}/{k}", f"m{k}".encode(), qos=1).wait_for_publish(5)
                assert arrived.wait(5), f"round {k}: the first message after subscribe was lost"
            finally:
                subscriber.close()
    finally:
        publisher.close()
    assert received == [f"m{k}".encode() for k in range(20)]

