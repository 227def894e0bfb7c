"""The collector runtime: MQTT in, validated rows out, acknowledged only after commit.

One :class:`Collector` subscribes to the telemetry tree with a persistent session and
manual acknowledgement: by default with a plain (exclusive) subscription, which Mosquitto
saves in its persistence file and restores after a broker restart, so messages published
before the collector reconnects wait for it; or, with ``collector_subscription = "shared"``,
through ``$share/its-collectors/...`` so N processes split the load (Mosquitto 2.0 does not
restore shared subscriptions: after a broker restart, messages published before the
collectors re-subscribe reach no one). A writer thread takes batches, parses them with the
routes' pure parse functions, COPYs rows and dead letters in one transaction, commits, then
acknowledges.
When the database is unreachable the batch in hand goes to a local spool file (fsync'd,
then acknowledged), intake stops (the broker keeps the rest: at most ``collector_inflight``
messages are ever unacknowledged), and the spool is replayed when the database returns.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import paho.mqtt.client as mqtt
import psycopg2

from its import metrics
from its.db import Database, copy_rows, drop_expired_partitions, upsert_rows
from its.ingest import PayloadError, Route, Router
from its.mqtt import MqttConnection, connect
from its.settings import Settings

__all__ = ["SHARE_GROUP", "Collector", "Message", "process_batch"]

log = logging.getLogger(__name__)
SHARE_GROUP = "its-collectors"
REJECTED_COLUMNS = ("received_at", "topic", "payload", "reason", "msg_key")
TELEMETRY_FILTER = "its/v1/#"
#: Derived state the platform publishes itself (and camera snapshots, which the API keeps in
#: memory): not telemetry rows, acknowledged and skipped.
IGNORED_PREFIXES = ("its/v1/state/",)
IGNORED_SUFFIXES = ("/snapshot",)


class Message(NamedTuple):
    """One received MQTT message. ``mid`` is 0 for replayed (already acknowledged) ones.

    ``received`` is epoch seconds (cheap to take per message; an aware datetime is accepted
    too); see :attr:`received_at`. ``generation`` is the connection that delivered it
    (:attr:`its.mqtt.MqttConnection.generation`): its ``mid`` is acknowledged on that
    connection only.
    """

    mid: int
    qos: int
    topic: str
    payload: bytes
    received: float | datetime
    generation: int = 1

    @property
    def received_at(self) -> datetime:
        r = self.received
        return r if isinstance(r, datetime) else datetime.fromtimestamp(r, tz=UTC)

    @property
    def received_s(self) -> float:
        r = self.received
        return r.timestamp() if isinstance(r, datetime) else r


@dataclass
class BatchResult:
    stored: int = 0
    rejected: int = 0
    inserted: int = 0


def _msg_key(topic: str, payload: bytes) -> bytes:
    return hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\x00" + payload).digest()


def process_batch(
    conn: psycopg2.extensions.connection,
    router: Router,
    batch: Sequence[Message],
    max_payload_bytes: int,
) -> BatchResult:
    """Parse and write one batch inside the caller's transaction.

    Every message either yields rows for its route's table or becomes a
    ``rejected_messages`` row with the reason; nothing raises out of here except
    database errors.
    """
    rows_by_route: dict[Route, list[Sequence[Any]]] = defaultdict(list)
    stored_by_feed: dict[str, int] = defaultdict(int)
    rejected: list[tuple[Any, ...]] = []
    reasons: list[tuple[str, str]] = []
    received_by_feed: dict[str, int] = defaultdict(int)
    for msg in batch:
        if msg.topic.startswith(IGNORED_PREFIXES) or msg.topic.endswith(IGNORED_SUFFIXES):
            continue
        route = router.route(msg.topic)
        feed = route.feed if route else "unknown"
        received_by_feed[feed] += 1
        reason: str | None = None
        if route is None:
            reason = "unknown_topic"
        elif len(msg.payload) > max_payload_bytes:
            reason = f"oversized: {len(msg.payload)} bytes > {max_payload_bytes}"
        else:
            try:
                rows = route.parse(msg.topic, msg.payload)
                for row in rows:
                    if len(row) != len(route.columns):
                        raise PayloadError(f"parser returned {len(row)} values for {len(route.columns)} columns")
                rows_by_route[route].extend(rows)
                stored_by_feed[feed] += 1
            except PayloadError as exc:
                reason = str(exc)[:500] or "invalid payload"
            except Exception as exc:  # a parser bug must not kill the collector
                log.exception("parser of %s failed", feed)
                reason = f"parser error: {type(exc).__name__}: {str(exc)[:300]}"
        if reason is not None:
            topic = msg.topic.encode("utf-8", "replace").decode("utf-8")[:1000]
            rejected.append((msg.received_at, topic, msg.payload, reason, _msg_key(msg.topic, msg.payload)))
            reasons.append((feed, reason.split(":")[0][:40]))
    result = BatchResult()
    for route, rows in rows_by_route.items():
        if route.upsert_key:
            n = upsert_rows(conn, route.table, route.columns, rows, route.upsert_key)
        else:
            n = copy_rows(conn, route.table, route.columns, rows)
        metrics.ROWS_INSERTED.labels(route.table).inc(n)
        result.inserted += n
    if rejected:
        copy_rows(conn, "rejected_messages", REJECTED_COLUMNS, rejected)
    for feed, n in received_by_feed.items():
        metrics.RECEIVED.labels(feed).inc(n)
    for feed, n in stored_by_feed.items():
        metrics.STORED.labels(feed).inc(n)
        result.stored += n
    for feed, short in reasons:
        metrics.REJECTED.labels(feed, short).inc()
    result.rejected = len(rejected)
    return result


class Spool:
    """Append-only local file of messages received while the database was away."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.count = self._count_existing()
        metrics.SPOOLED.set(self.count)

    def _count_existing(self) -> int:
        if not self.path.exists():
            return 0
        with self.path.open("rb") as fh:
            return sum(1 for _ in fh)

    def append(self, batch: Sequence[Message]) -> None:
        with self.path.open("ab") as fh:
            for m in batch:
                fh.write(orjson.dumps({
                    "t": m.topic, "p": base64.b64encode(m.payload).decode(), "r": m.received_at.isoformat(),
                }) + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.count += len(batch)
        metrics.SPOOLED.set(self.count)

    def read(self) -> list[Message]:
        if not self.path.exists():
            return []
        out = []
        with self.path.open("rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    d = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue  # a torn last line from a crash mid-write; its message was never acked
                out.append(Message(0, 1, d["t"], base64.b64decode(d["p"]), datetime.fromisoformat(d["r"]).timestamp()))
        return out

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.count = 0
        metrics.SPOOLED.set(0)


class Collector:
    """Subscribe to the routes' topics and store every message exactly once.

    Parameters
    ----------
    settings : Settings
        Needs ``mqtt_url``; batch, in-flight and payload limits come from here too.
    db : Database
    routes : sequence of Route
    client_id : str, optional
        Persistent session id; default ``<collector_client_id>-<host>`` is stable across
        restarts of the same process so the broker redelivers what was not acknowledged.
    shared : bool, optional
        Subscribe through ``$share/its-collectors/`` (MQTT v5) so collectors split the load;
        default from ``settings.collector_subscription``.
    """

    def __init__(
        self,
        settings: Settings,
        db: Database,
        routes: Sequence[Route],
        *,
        client_id: str | None = None,
        shared: bool | None = None,
    ) -> None:
        if not settings.mqtt_url:
            raise ValueError("collector needs an MQTT URL")
        self.settings = settings
        self.db = db
        self.router = Router(routes)
        self.client_id = client_id or f"{settings.collector_client_id}-{os.uname().nodename}"
        self.shared = settings.collector_subscription == "shared" if shared is None else shared
        self.spool = Spool(settings.data_dir / "spool" / f"{self.client_id}.jsonl")
        # deque appends/pops are atomic; the broker bounds it (MQTT v5 receive maximum), and
        # _on_message applies backpressure for 3.1.1 brokers that ignore that bound
        self._inbox: deque[Message] = deque()
        self._inbox_cap = settings.collector_inflight + 1000
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self.conn: MqttConnection | None = None
        self.db_available = True
        self.totals = BatchResult()
        self.last_commit_at: float | None = None
        #: seconds from receipt to commit of the oldest message of the last batch
        self.lag_s = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        try:
            self._replay_spool()
        except psycopg2.OperationalError as exc:
            log.error("database unavailable at start (%s); will retry", str(exc).strip()[:200])
            self.db_available = False
        self.conn = connect(
            self.settings.mqtt_url or "", self.client_id, persistent=True, manual_ack=True,
            receive_maximum=self.settings.collector_inflight, on_message=self._on_message,
            ca_file=self.settings.mqtt_ca_file,
        )
        share = self.shared and self.conn.protocol == mqtt.MQTTv5
        if self.shared and not share:
            log.warning("broker speaks MQTT 3.1.1 only: no shared subscriptions, run a single collector")
        # one subscription for the whole telemetry tree: topics no route knows are dead-lettered
        shared_filter = f"$share/{SHARE_GROUP}/{TELEMETRY_FILTER}"
        if self.conn.session_present:
            # a session kept from a run in the other mode would deliver everything twice
            self.conn.client.unsubscribe(TELEMETRY_FILTER if share else shared_filter)
        self.conn.subscribe(shared_filter if share else TELEMETRY_FILTER, 1)
        self._writer = threading.Thread(target=self._write_loop, name="collector-writer", daemon=True)
        self._writer.start()

    def stop(self, drain_s: float = 5.0) -> None:
        """Commit what is queued (bounded by ``drain_s``), then disconnect."""
        deadline = time.monotonic() + drain_s
        while self._inbox and time.monotonic() < deadline and self.db_available:
            time.sleep(0.02)
        self._stop.set()
        if self._writer:
            self._writer.join(timeout=drain_s + 5)
        if self.conn:
            self.conn.close()

    def run_forever(self) -> None:
        self.start()
        next_retention = time.monotonic()
        try:
            while not self._stop.is_set():
                if self.settings.retention_days and time.monotonic() >= next_retention:
                    try:
                        drop_expired_partitions(self.db, self.settings.retention_days)
                    except psycopg2.Error as exc:
                        log.warning("retention failed: %s", exc)
                    next_retention = time.monotonic() + 3600
                time.sleep(0.5)
        finally:
            self.stop()

    # ------------------------------------------------------------------ intake
    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        while len(self._inbox) >= self._inbox_cap and not self._stop.is_set():
            time.sleep(0.01)  # backpressure: the network thread stops reading
        generation = self.conn.generation if self.conn is not None else 1  # None: first connect
        self._inbox.append(Message(msg.mid, msg.qos, msg.topic, bytes(msg.payload), time.time(), generation))

    def pending(self) -> int:
        """Messages received and not yet committed."""
        return len(self._inbox)

    def _take_batch(self) -> list[Message]:
        inbox = self._inbox
        if not inbox:
            time.sleep(0.002)
            if not inbox:
                return []
        deadline = time.monotonic() + self.settings.collector_batch_ms / 1000.0
        limit = self.settings.collector_batch_size
        batch: list[Message] = []
        while len(batch) < limit:
            try:
                batch.append(inbox.popleft())
            except IndexError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.002)
        return batch

    # ------------------------------------------------------------------ writing
    def _write_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._write_loop_body()
            except Exception:  # never let the writer thread die
                log.exception("collector writer failed; restarting it")
                time.sleep(1.0)

    def _write_loop_body(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            if not self.db_available:
                if self.db.ping():
                    log.warning("database is back; replaying %d spooled messages", self.spool.count)
                    try:
                        self._replay_spool()
                    except (psycopg2.OperationalError, psycopg2.InterfaceError):
                        time.sleep(backoff)
                        continue
                    self.db_available = True
                    backoff = 0.5
                else:
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    continue
            batch = self._take_batch()
            if not batch:
                continue
            try:
                self._commit(batch)
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                log.error("database unavailable (%s); spooling %d messages", str(exc).strip()[:200], len(batch))
                self.db_available = False
                self.spool.append(batch)
                self._ack(batch)
            except psycopg2.Error:
                # a data error we did not foresee: dead-letter the batch one message at a time
                log.exception("batch failed; retrying message by message")
                for m in batch:
                    try:
                        self._commit([m])
                    except psycopg2.Error as exc2:
                        self._dead_letter(m, f"database rejected row: {str(exc2).strip()[:300]}")
                        self._ack([m])
            metrics.QUEUE_DEPTH.set(len(self._inbox))

    def _commit(self, batch: Sequence[Message]) -> None:
        started = time.perf_counter()
        with self.db.connection() as conn:
            result = process_batch(conn, self.router, batch, self.settings.max_payload_bytes)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        if batch[0].mid:  # live messages (replayed spool entries are old by design)
            self.lag_s = time.time() - batch[0].received_s
            metrics.INGEST_LAG.observe(self.lag_s)
        self.totals.stored += result.stored
        self.totals.rejected += result.rejected
        self.totals.inserted += result.inserted
        self.last_commit_at = time.time()
        self._ack(batch)

    def _dead_letter(self, m: Message, reason: str) -> None:
        with self.db.connection() as conn:
            copy_rows(conn, "rejected_messages", REJECTED_COLUMNS,
                      [(m.received_at, m.topic, m.payload, reason, _msg_key(m.topic, m.payload))])
        self.totals.rejected += 1

    def _ack(self, batch: Sequence[Message]) -> None:
        """PUBACK committed messages on the connection that delivered them.

        After a reconnect the ids of earlier deliveries may name other messages (a restarted
        broker numbers afresh): those are not acknowledged; the broker redelivers the ones it
        still holds and the duplicates are skipped by key.
        """
        if self.conn is None:
            return
        current = self.conn.generation
        for m in batch:
            if m.mid and m.qos > 0 and m.generation == current:
                self.conn.client.ack(m.mid, m.qos)

    def _replay_spool(self) -> None:
        pending = self.spool.read()
        if not pending:
            return
        size = self.settings.collector_batch_size
        for i in range(0, len(pending), size):
            self._commit(pending[i:i + size])
        self.spool.clear()


def new_client_id(prefix: str) -> str:
    """A unique client id (tests and benchmarks that want a fresh session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
