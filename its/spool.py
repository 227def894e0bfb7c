"""The collector's local spool: messages received while the database was away.

An append-only JSON-lines file (fsync'd before the messages are acknowledged), replayed and
cleared once the database is back; a torn last line from a crash mid-write is skipped (its
message was never acknowledged, so the broker still holds it).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from its import metrics
from its.dead_letters import Message

__all__ = ["Spool"]


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

    @staticmethod
    def _line(m: Message) -> bytes:
        entry: dict[str, Any] = {"t": m.topic, "p": base64.b64encode(m.payload).decode(), "r": m.received_at.isoformat()}
        if m.dup:
            entry["d"] = 1
        if m.cut is not None:
            entry["c"] = [m.cut[0], base64.b64encode(m.cut[1]).decode(), base64.b64encode(m.cut[2]).decode()]
        return orjson.dumps(entry) + b"\n"

    def append(self, batch: Sequence[Message]) -> None:
        with self.path.open("ab") as fh:
            fh.write(b"".join(self._line(m) for m in batch))
            fh.flush()
            os.fsync(fh.fileno())
        self.count += len(batch)
        metrics.SPOOLED.set(self.count)

    def rewrite(self, messages: Sequence[Message]) -> None:
        """Replace the spool by ``messages`` (atomically: written aside, fsync'd, renamed)."""
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(b"".join(self._line(m) for m in messages))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self.count = len(messages)
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
                c = d.get("c")
                cut = (int(c[0]), base64.b64decode(c[1]), base64.b64decode(c[2])) if c else None
                out.append(Message(0, 1, d["t"], base64.b64decode(d["p"]), datetime.fromisoformat(d["r"]).timestamp(),
                                   dup=bool(d.get("d")), cut=cut))
        return out

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
        self.count = 0
        metrics.SPOOLED.set(0)
