"""What a domain service gets from the platform (:class:`Context`) and must provide (:class:`Service`).

Services keep derived real-time state in memory, fed live by MQTT and rebuilt from the store
at start; the API answers from that state.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from fastapi import APIRouter

from its.alerts import AlertSink
from its.db import Database
from its.ingest import topic_matches
from its.mqtt import MqttConnection, connect
from its.settings import Settings

__all__ = ["Context", "LiveFeed", "Service"]

log = logging.getLogger(__name__)

LiveCallback = Callable[[str, bytes], None]


class LiveFeed:
    """One non-persistent MQTT connection dispatching messages to callbacks by topic filter.

    Callbacks run on the network thread: they must be quick and thread-safe.
    """

    def __init__(self, url: str, client_id: str = "", ca_file: object = None) -> None:
        self.url = url
        self._callbacks: list[tuple[tuple[str, ...], LiveCallback]] = []
        self._lock = threading.Lock()
        self.conn: MqttConnection = connect(url, client_id, on_message=self._on_message,
                                            ca_file=ca_file)  # type: ignore[arg-type]

    def subscribe(self, topic_filter: str, callback: LiveCallback, qos: int = 1) -> None:
        with self._lock:
            self._callbacks.append((tuple(topic_filter.split("/")), callback))
        self.conn.subscribe(topic_filter, qos)

    def publish(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> None:
        self.conn.publish(topic, payload, qos=qos, retain=retain)

    def connected(self) -> bool:
        return self.conn.connected.is_set()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        levels = msg.topic.split("/")
        with self._lock:
            targets = [cb for f, cb in self._callbacks if topic_matches(f, levels)]
        for cb in targets:
            try:
                cb(msg.topic, bytes(msg.payload))
            except Exception:
                log.exception("live callback failed for %s", msg.topic)

    def close(self) -> None:
        self.conn.close()


@dataclass
class Context:
    """Everything a service may use. ``live`` is None when running without a broker (tests)."""

    settings: Settings
    db: Database
    read_db: Database
    alerts: AlertSink
    live: LiveFeed | None = None
    broker_kind: str = "external"
    extras: dict[str, object] = field(default_factory=dict)

    def subscribe(self, topic_filter: str, callback: LiveCallback) -> None:
        """Receive live messages of ``topic_filter`` (no-op without a broker)."""
        if self.live is not None:
            self.live.subscribe(topic_filter, callback)

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish derived state (no-op without a broker)."""
        if self.live is not None:
            self.live.publish(topic, payload, retain=retain)


class Service(ABC):
    """A domain's real-time service: state in memory, an API router over it."""

    name: str = "service"

    @abstractmethod
    def start(self, ctx: Context) -> None:
        """Load state from ``ctx.db`` and subscribe to live topics."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release threads and connections."""

    @abstractmethod
    def ready(self) -> bool:
        """True once the state has been rebuilt from the store."""

    @abstractmethod
    def router(self) -> APIRouter:
        """The FastAPI router serving this service's routes."""
