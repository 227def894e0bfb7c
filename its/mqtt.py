"""MQTT client factory: paho-mqtt 2.x, MQTT v5 with a 3.1.1 fallback, TLS, auth, reconnect.

Persistent sessions (clean start off, session expiry) and manual acknowledgement are
options of :func:`connect`, so the collector can acknowledge a message only after the row
that holds it is committed.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from its.settings import mqtt_endpoint

__all__ = ["MqttConnection", "connect", "drop_session", "publisher"]

log = logging.getLogger(__name__)

MessageCallback = Callable[[mqtt.Client, object, mqtt.MQTTMessage], None]


class MqttConnection:
    """A connected paho client with its network loop running in a background thread.

    Attributes
    ----------
    client : paho.mqtt.client.Client
    protocol : int
        ``mqtt.MQTTv5`` or ``mqtt.MQTTv311`` (after a broker refused v5).
    session_present : bool
        Whether the broker resumed a stored session at the last connect.
    generation : int
        Number of successful connects so far: a message id is only meaningful within the
        connection (generation) that delivered it.
    """

    def __init__(self, client: mqtt.Client, protocol: int) -> None:
        self.client = client
        self.protocol = protocol
        self.session_present = False
        self.generation = 0
        self.connected = threading.Event()
        self._subscriptions: list[tuple[str, int]] = []
        #: SUBACKs awaited, by message id (set by the network thread)
        self._subacks: dict[int, threading.Event] = {}
        self._subacks_lock = threading.Lock()

    def subscribe(self, topic_filter: str, qos: int = 1, wait_s: float = 10.0) -> bool:
        """Subscribe now and again after every reconnect.

        Waits up to ``wait_s`` seconds for the broker's SUBACK, so that a caller which goes on
        to publish (or tells others it is listening) loses nothing sent meanwhile. Returns whether
        the broker acknowledged the subscription in time (False while disconnected: the
        subscription is then made at the next connect).
        """
        self._subscriptions.append((topic_filter, qos))
        if not self.connected.is_set():
            return False
        acked = threading.Event()
        with self._subacks_lock:  # the SUBACK may come back before we have filed its event
            result, mid = self.client.subscribe(topic_filter, qos)
            if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
                return False
            if threading.current_thread() is getattr(self.client, "_thread", None):
                return False  # called from the network thread itself: the SUBACK cannot arrive while we wait
            self._subacks[mid] = acked
        try:
            return acked.wait(wait_s)
        finally:
            self._subacks.pop(mid, None)

    def _on_subscribe(self, mid: int) -> None:
        with self._subacks_lock:
            event = self._subacks.get(mid)
        if event is not None:
            event.set()

    def _resubscribe(self) -> None:
        for topic_filter, qos in self._subscriptions:
            self.client.subscribe(topic_filter, qos)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=qos, retain=retain)

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()


def connect(
    url: str,
    client_id: str = "",
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    receive_maximum: int = 1000,
    on_message: MessageCallback | None = None,
    ca_file: Path | None = None,
    will: tuple[str, bytes, bool] | None = None,
    session_expiry_s: int = 7 * 24 * 3600,
    timeout_s: float = 10.0,
    prefer_v5: bool = True,
    max_inflight: int = 1000,
) -> MqttConnection:
    """Connect to ``url`` and start the network loop.

    Parameters
    ----------
    url : str
        ``mqtt://[user:pass@]host:port`` or ``mqtts://...``.
    client_id : str
        Needed for a persistent session.
    persistent : bool
        Clean start off and a session expiry, so QoS 1 messages wait for us at the broker.
    manual_ack : bool
        Messages are acknowledged only by ``client.ack(mid, qos)``.
    receive_maximum : int
        MQTT v5 limit of unacknowledged QoS 1 messages the broker sends us (our in-flight bound).
    will : (topic, payload, retain), optional
        Last Will published by the broker if we vanish.
    prefer_v5 : bool
        Try MQTT v5 first and fall back to 3.1.1 when the broker refuses it.
    max_inflight : int
        Our own unacknowledged QoS 1 publications allowed at once.
    """
    protocols = [mqtt.MQTTv5, mqtt.MQTTv311] if prefer_v5 else [mqtt.MQTTv311]
    last_error: Exception | None = None
    for protocol in protocols:
        try:
            return _connect(url, client_id, protocol, persistent, manual_ack, receive_maximum,
                            on_message, ca_file, will, session_expiry_s, timeout_s, max_inflight)
        except _ProtocolRefused as exc:
            log.warning("broker refused MQTT %s (%s); falling back", "v5" if protocol == mqtt.MQTTv5 else "3.1.1", exc)
            last_error = exc
    raise ConnectionError(f"could not connect to {url}: {last_error}")


class _ProtocolRefused(Exception):
    pass


def _connect(
    url: str,
    client_id: str,
    protocol: int,
    persistent: bool,
    manual_ack: bool,
    receive_maximum: int,
    on_message: MessageCallback | None,
    ca_file: Path | None,
    will: tuple[str, bytes, bool] | None,
    session_expiry_s: int,
    timeout_s: float,
    max_inflight: int = 1000,
) -> MqttConnection:
    host, port, tls, username, password = mqtt_endpoint(url)
    v5 = protocol == mqtt.MQTTv5
    kwargs: dict[str, object] = {}
    if not v5:
        kwargs["clean_session"] = not persistent if client_id else True
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,  # type: ignore[arg-type]
        manual_ack=manual_ack, **kwargs,  # type: ignore[arg-type]
    )
    client.max_inflight_messages_set(max_inflight)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    if username:
        client.username_pw_set(username, password)
    if tls:
        context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        client.tls_set_context(context)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=will[2])
    conn = MqttConnection(client, protocol)
    outcome = _install_callbacks(client, conn)
    if on_message is not None:
        client.on_message = on_message
    properties = None
    if v5:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = session_expiry_s if persistent else 0
        properties.ReceiveMaximum = max(1, min(65535, receive_maximum))
    try:
        client.connect(host, port, keepalive=30, clean_start=(not persistent) if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                       properties=properties)
    except (OSError, ValueError) as exc:
        raise ConnectionError(f"cannot reach MQTT broker at {host}:{port}: {exc}") from exc
    client.loop_start()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if conn.connected.is_set():
            return conn
        if outcome.get("failed") or (v5 and not client.is_connected() and "rc" in outcome):
            break
        time.sleep(0.01)
    client.loop_stop()
    with contextlib.suppress(Exception):
        client.disconnect()
    rc = outcome.get("rc")
    if v5 and (rc is None or "failed" in outcome):
        raise _ProtocolRefused(str(rc))
    raise ConnectionError(f"MQTT connect to {host}:{port} failed: {rc}")


def _install_callbacks(client: mqtt.Client, conn: MqttConnection) -> dict[str, object]:
    """Connection, disconnection and SUBACK callbacks keeping ``conn`` up to date; returns the
    dict in which the first CONNACK's outcome (``rc``, ``failed``) is written."""
    outcome: dict[str, object] = {}

    def on_connect(c: mqtt.Client, _u: object, flags: mqtt.ConnectFlags, rc: object, _p: object = None) -> None:
        code = getattr(rc, "value", rc)
        outcome["rc"] = rc
        if code == 0:
            conn.session_present = bool(flags.session_present)
            conn.generation += 1
            conn.connected.set()
            conn._resubscribe()
        else:
            outcome["failed"] = True

    def on_disconnect(c: mqtt.Client, _u: object, _f: object, rc: object, _p: object = None) -> None:
        conn.connected.clear()

    def on_subscribe(c: mqtt.Client, _u: object, mid: int, _codes: object, _p: object = None) -> None:
        conn._on_subscribe(mid)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_subscribe = on_subscribe
    return outcome


def publisher(url: str, client_id: str = "", ca_file: Path | None = None) -> MqttConnection:
    """A plain publishing connection (clean session)."""
    return connect(url, client_id, ca_file=ca_file)


def drop_session(url: str, client_id: str, ca_file: Path | None = None) -> None:
    """Discard the broker's stored session of ``client_id`` (clean start, expiry 0)."""
    conn = connect(url, client_id, persistent=False, ca_file=ca_file)
    conn.close()
