"""The collector runtime: MQTT in, validated rows out, acknowledged only after commit.

One :class:`Collector` subscribes to the telemetry tree with a persistent session and
manual acknowledgement: by default with a plain (exclusive) subscription, which Mosquitto
saves in its persistence file and restores after a broker restart, so messages published
before the collector reconnects wait for it; or, with ``collector_subscription = "shared"``,
through ``$share/its-collectors/...`` so N processes split the load (Mosquitto 2.0 does not
restore shared subscriptions: after a broker restart, messages published before the
collectors re-subscribe reach no one). A writer thread takes batches, parses them with the
routes' pure parse functions, COPYs rows and dead letters in one transaction, commits, then
acknowledges. The parts live in their own modules: :mod:`its.batch` (parse, check and write
one batch), :mod:`its.dead_letters` (what is kept of a refused message) and :mod:`its.spool`
(the local file of messages held during a database outage).

No message is lost to a bad neighbour: a batch whose write fails for any reason other than
an unreachable database is split in halves (bisection) until every valid message is stored
and every message the database refuses is dead-lettered alone, with the error as reason.
When the database is unreachable the messages in hand go to a local spool file (fsync'd,
then acknowledged), intake stops (the broker keeps the rest: at most ``collector_inflight``
messages are ever unacknowledged), and the spool is replayed when the database returns.

Checks beyond the routes' parsers (:func:`its.batch.process_batch`) (each failure is a dead letter with its reason): the topic
has a route (``unknown_topic``) and no control or bidi-override characters, the payload is at
most ``max_payload_bytes``, every text value holds no control or bidi-override characters,
and the row's time (the time column of its table in ``its_timeseries``) lies within the
feed's :class:`its.timeutil.TimeWindow`. Only the platform's own topics (``its/v1/state/#``,
derived state, writable only by the platform account; ``its/v1/cameras/+/snapshot``, JPEGs
the API keeps in memory) are acknowledged without being stored or dead-lettered.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence

import paho.mqtt.client as mqtt
import psycopg2

from its import metrics
from its.batch import IGNORE, BatchResult, process_batch, topic_verdict
from its.db import Database, drop_expired_partitions
from its.dead_letters import Message, cut_message, dead_letter, write_dead_letters
from its.ingest import TELEMETRY_FILTER, Route, Router
from its.mqtt import MqttConnection, connect
from its.settings import Settings
from its.spool import Spool
from its.timeutil import TimePolicy, TimeWindow

__all__ = ["SHARE_GROUP", "Collector", "DatabaseUnavailable", "new_client_id"]

log = logging.getLogger(__name__)
SHARE_GROUP = "its-collectors"


class DatabaseUnavailable(Exception):
    """The database cannot be reached; ``remaining`` are the messages not yet dealt with."""

    def __init__(self, remaining: Sequence[Message], cause: BaseException) -> None:
        super().__init__(str(cause).strip()[:200])
        self.remaining = list(remaining)


class Collector:
    """Subscribe to the routes' topics and store every message exactly once.

    Parameters
    ----------
    settings : Settings
        Needs ``mqtt_url``; batch, in-flight, payload, time-plausibility, dead-letter and
        retention limits come from here too.
    db : Database
    routes : sequence of Route
    client_id : str, optional
        Persistent session id; default ``<collector_client_id>-<host>`` is stable across
        restarts of the same process so the broker redelivers what was not acknowledged.
    shared : bool, optional
        Subscribe through ``$share/its-collectors/`` (MQTT v5) so collectors split the load;
        default from ``settings.collector_subscription``.
    """

    #: Seconds between two runs of retention (the first runs soon after start).
    HOUSEKEEPING_S = 3600.0

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
        self.time_policy = TimePolicy(
            TimeWindow(settings.ingest_max_future_s, settings.ingest_max_age_s),
            settings.ingest_max_future_s_by_feed, settings.ingest_max_age_s_by_feed,
        )
        # a payload too large to store is kept only as far as its dead letter needs it
        self._keep_bytes = max(settings.max_payload_bytes, settings.rejected_payload_max_bytes)
        self.client_id = client_id or f"{settings.collector_client_id}-{os.uname().nodename}"
        self.shared = settings.collector_subscription == "shared" if shared is None else shared
        self.spool = Spool(settings.data_dir / "spool" / f"{self.client_id}.jsonl")
        # deque appends/pops are atomic; the broker bounds it (MQTT v5 receive maximum), and
        # _on_message applies backpressure for 3.1.1 brokers that ignore that bound
        self._inbox: deque[Message] = deque()
        self._inbox_cap = settings.collector_inflight + 1000
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None
        self._housekeeper: threading.Thread | None = None
        self.conn: MqttConnection | None = None
        self.db_available = True
        self.totals = BatchResult()
        #: messages neither stored nor dead-lettered because even their dead letter failed
        self.dropped = 0
        self.last_commit_at: float | None = None
        #: seconds from receipt to commit of the oldest message of the last batch
        self.lag_s = 0.0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        try:
            self._replay_spool()
        except (DatabaseUnavailable, psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
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
        self._housekeeper = threading.Thread(target=self._housekeeping, name="collector-retention", daemon=True)
        self._housekeeper.start()

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
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    def _housekeeping(self) -> None:
        """Retention: telemetry after ``retention_days``, dead letters after ``rejected_retention_days``."""
        wait = 10.0
        while not self._stop.wait(wait):
            wait = self.HOUSEKEEPING_S
            self.expire()

    def expire(self) -> list[str]:
        """Drop expired time-series data now; return the partitions or chunks dropped."""
        dropped: list[str] = []
        for days, table in ((self.settings.retention_days, None),
                            (self.settings.rejected_retention_days, "rejected_messages")):
            try:
                dropped += drop_expired_partitions(self.db, days, table)
            except psycopg2.Error as exc:
                log.warning("retention of %s failed: %s", table or "time series", str(exc).strip()[:200])
        return dropped

    # ------------------------------------------------------------------ intake
    def _on_message(self, _client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        # nothing may raise here: paho would end its network thread
        try:
            while len(self._inbox) >= self._inbox_cap and not self._stop.is_set():
                time.sleep(0.01)  # backpressure: the network thread stops reading
            generation = self.conn.generation if self.conn is not None else 1  # None: first connect
            try:
                topic = msg.topic
            except UnicodeDecodeError:
                topic = msg._topic.decode("utf-8", "replace")
            # the platform's own topics (camera JPEGs) are skipped: their payload is not kept
            payload = b"" if topic_verdict(topic) is IGNORE else bytes(msg.payload)
            m = Message(msg.mid, msg.qos, topic, payload, time.time(), generation, bool(msg.dup or msg.retain))
            if len(payload) > self._keep_bytes:
                m = cut_message(m, self.settings.rejected_payload_max_bytes)
            self._inbox.append(m)
        except Exception:
            log.exception("message on %r not taken; the broker redelivers it", getattr(msg, "_topic", b"")[:200])

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
                    except (DatabaseUnavailable, psycopg2.OperationalError, psycopg2.InterfaceError):
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
                self._write(batch)
            except DatabaseUnavailable as exc:
                log.error("database unavailable (%s); spooling %d messages", exc, len(exc.remaining))
                self.db_available = False
                self.spool.append(exc.remaining)
                self._ack(exc.remaining)
            metrics.QUEUE_DEPTH.set(len(self._inbox))

    def _unreachable(self, exc: BaseException) -> bool:
        """True when ``exc`` means the database is away (not that it refused the data)."""
        return isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError) and not self.db.ping()

    def _write(self, batch: Sequence[Message]) -> None:
        """Store, dead-letter and acknowledge every message of ``batch``.

        A part whose write fails is split in halves until the failing messages stand alone;
        those are dead-lettered with the error. Parts are committed and acknowledged one by
        one, so what is done stays done.

        Raises
        ------
        DatabaseUnavailable
            With the messages not yet committed.
        """
        todo: list[Sequence[Message]] = [batch]
        retried: Sequence[Message] | None = None
        while todo:
            part = todo.pop()
            try:
                self._commit(part)
            except Exception as exc:
                if self._unreachable(exc):
                    raise DatabaseUnavailable([m for p in (part, *todo) for m in p], exc) from exc
                if len(part) > 1:
                    log.warning("batch of %d failed (%s: %s); splitting it", len(part), type(exc).__name__,
                                str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "")
                    half = len(part) // 2
                    todo += [part[half:], part[:half]]
                elif isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError) and part is not retried:
                    retried = part  # a lost connection while the server is up: try it once more
                    todo.append(part)
                else:
                    self._dead_letter(part[0], exc, todo)

    def _commit(self, batch: Sequence[Message]) -> None:
        started = time.perf_counter()
        with self.db.connection() as conn:
            result = process_batch(conn, self.router, batch, self.settings.max_payload_bytes,
                                   time_policy=self.time_policy,
                                   dead_letter_bytes=self.settings.rejected_payload_max_bytes)
        metrics.BATCH_SECONDS.observe(time.perf_counter() - started)
        result.publish_metrics()
        if batch[0].mid:  # live messages (replayed spool entries are old by design)
            self.lag_s = time.time() - batch[0].received_s
            metrics.INGEST_LAG.observe(self.lag_s)
        self._count(result)
        self.last_commit_at = time.time()
        self._ack(batch)

    def _count(self, result: BatchResult) -> None:
        t = self.totals
        t.stored += result.stored
        t.rejected += result.rejected
        t.inserted += result.inserted
        t.ignored += result.ignored
        t.redelivered += result.redelivered

    def _dead_letter(self, m: Message, error: BaseException, todo: Sequence[Sequence[Message]]) -> None:
        """Dead-letter one message the database refused (``todo``: what is left of its batch)."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        reason = f"database rejected: {type(error).__name__}: {first}"
        route = self.router.route(m.topic)
        feed = route.feed if route else "unknown"
        try:
            with self.db.connection() as conn:
                n = write_dead_letters(conn, [dead_letter(m, reason, self.settings.rejected_payload_max_bytes)], [m.dup])
        except Exception as exc:
            if self._unreachable(exc):
                raise DatabaseUnavailable([m, *(x for p in todo for x in p)], exc) from exc
            log.exception("dead letter of a message on %r failed; dropping it", m.topic[:200])
            self.dropped += 1
            self._ack([m])
            return
        metrics.RECEIVED.labels(feed).inc()
        metrics.REJECTED.labels(feed, "database_refused").inc()
        self.totals.rejected += 1
        self.totals.redelivered += 1 - n
        self._ack([m])

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
            try:
                self._write(pending[i:i + size])
            except DatabaseUnavailable as exc:
                self.spool.rewrite([*exc.remaining, *pending[i + size:]])  # what is done stays done
                raise
        self.spool.clear()


def new_client_id(prefix: str) -> str:
    """A unique client id (tests and benchmarks that want a fresh session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
