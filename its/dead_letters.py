"""Dead letters: what the collector keeps of a message it cannot store, and why.

A :class:`Message` is one received MQTT message, named by its key (SHA-256 of topic and
payload); a payload too large to keep holds its beginning only (:func:`cut_message`), with
the length and hash of the whole. :func:`dead_letter` makes its ``rejected_messages`` row
(payload truncated, its length and SHA-256, the reason) and :func:`write_dead_letters` COPYs
rows, skipping redeliveries of a dead letter already stored. :func:`reason_class` sorts the
free-text reasons into the few kinds the data-quality report counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

import psycopg2

from its.db import copy_rows

__all__ = ["DEAD_LETTER_COLUMNS", "REASON_CLASSES", "REJECTED_COLUMNS", "Message", "cut_message", "dead_letter",
           "reason_class", "write_dead_letters"]

#: The columns every writer of ``rejected_messages`` fills (the rest have defaults).
REJECTED_COLUMNS = ("received_at", "topic", "payload", "reason", "msg_key")
#: What the collector writes: also the original payload length (bytes) and its SHA-256.
DEAD_LETTER_COLUMNS = (*REJECTED_COLUMNS, "payload_bytes", "payload_sha256")


class Message(NamedTuple):
    """One received MQTT message. ``mid`` is 0 for replayed (already acknowledged) ones.

    ``received`` is epoch seconds (cheap to take per message; an aware datetime is accepted
    too); see :attr:`received_at`. ``generation`` is the connection that delivered it
    (:attr:`its.mqtt.MqttConnection.generation`): its ``mid`` is acknowledged on that
    connection only. ``dup`` is true for a redelivery (MQTT DUP flag) or a retained message
    sent on subscribing: its dead letter is skipped when an identical one is stored.
    ``cut`` is ``(length, sha256 of payload, message key)`` of a payload too large to keep,
    of which ``payload`` holds the beginning only.
    """

    mid: int
    qos: int
    topic: str
    payload: bytes
    received: float | datetime
    generation: int = 1
    dup: bool = False
    cut: tuple[int, bytes, bytes] | None = None

    @property
    def received_at(self) -> datetime:
        r = self.received
        return r if isinstance(r, datetime) else datetime.fromtimestamp(r, tz=UTC)

    @property
    def received_s(self) -> float:
        r = self.received
        return r.timestamp() if isinstance(r, datetime) else r

    @property
    def size(self) -> int:
        """Length of the whole payload, bytes."""
        return self.cut[0] if self.cut else len(self.payload)

    @property
    def key(self) -> bytes:
        """sha256(topic, 0x00, payload): the identity of the message."""
        return self.cut[2] if self.cut else _msg_key(self.topic, self.payload)


def cut_message(msg: Message, keep_bytes: int) -> Message:
    """``msg`` holding only the first ``keep_bytes`` bytes of its payload (and what names the rest)."""
    if msg.cut is not None or len(msg.payload) <= keep_bytes:
        return msg
    p = msg.payload
    return msg._replace(payload=p[:keep_bytes], cut=(len(p), hashlib.sha256(p).digest(), _msg_key(msg.topic, p)))


def _msg_key(topic: str, payload: bytes) -> bytes:
    return hashlib.sha256(topic.encode("utf-8", "surrogatepass") + b"\x00" + payload).digest()


def _text(value: str, limit: int) -> str:
    """Storable text: valid UTF-8 without NUL, at most ``limit`` characters."""
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")[:limit]


def dead_letter(msg: Message, reason: str, keep_bytes: int) -> tuple[Any, ...]:
    """A ``rejected_messages`` row (:data:`DEAD_LETTER_COLUMNS`) keeping ``keep_bytes`` of the payload."""
    if msg.cut is not None:
        size, digest = msg.cut[0], msg.cut[1]
    else:
        size, digest = len(msg.payload), hashlib.sha256(msg.payload).digest()
    return (msg.received_at, _text(msg.topic, 1000), msg.payload[:keep_bytes], _text(reason, 500), msg.key,
            size, digest)


def write_dead_letters(conn: psycopg2.extensions.connection, rows: Sequence[tuple[Any, ...]],
                       redelivered: Sequence[bool] | None = None) -> int:
    """COPY dead letters (:func:`dead_letter` rows); return how many were written.

    A row flagged in ``redelivered`` is skipped when a dead letter with its key is stored
    already (the broker redelivered a message whose first delivery was committed); every
    other row is written, so a repeated bad message shows as often as it was received.
    """
    if redelivered is not None and any(redelivered):
        keys = [bytes(r[4]) for r, again in zip(rows, redelivered, strict=True) if again]
        with conn.cursor() as cur:
            cur.execute("SELECT DISTINCT msg_key FROM rejected_messages WHERE msg_key = ANY(%s)",
                        ([psycopg2.Binary(k) for k in keys],))
            stored = {bytes(k) for (k,) in cur.fetchall()}
        rows = [r for r, again in zip(rows, redelivered, strict=True) if not (again and bytes(r[4]) in stored)]
    if not rows:
        return 0
    copy_rows(conn, "rejected_messages", DEAD_LETTER_COLUMNS, rows)
    return len(rows)


#: The kinds of dead-letter reasons (`reason_class`), in the order reports list them.
REASON_CLASSES = ("future", "too_old", "invalid", "unsafe", "oversized", "unknown_topic", "parser_error",
                  "database_refused")


def reason_class(reason: str) -> str:
    """The kind of a dead letter's reason (one of `REASON_CLASSES`).

    ``future``: stamped more than the feed's allowed skew ahead of the clock (or a day ahead,
    the parsers' bound); ``too_old``: older than the feed's maximum age at receipt, or before
    2000; ``unsafe``: control or bidi-override characters in the topic or a value;
    ``oversized``: payload over ``ITS_MAX_PAYLOAD_BYTES``; ``unknown_topic``: no route;
    ``parser_error``: the parser failed (a bug); ``database_refused``: the database refused
    the row; ``invalid``: any other refusal of a parser (a missing or malformed field).
    """
    text = reason.lower()
    if text.startswith("unknown_topic"):
        return "unknown_topic"
    if text.startswith("oversized"):
        return "oversized"
    if text.startswith("database rejected"):
        return "database_refused"
    if text.startswith("parser error"):
        return "parser_error"
    if "in the future" in text:
        return "future"
    if "before receipt" in text or "is before 2000" in text:
        return "too_old"
    if "control or bidi-override" in text or text.startswith("unsafe"):
        return "unsafe"
    return "invalid"
