"""SQL edge of the operating-mode playbook: the log of applied actions (``playbook_log``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from its.db import Database
from its.playbook import Action, Situation

__all__ = ["LOG_COLUMNS", "applied_since", "read_log", "write_applied"]

LOG_COLUMNS = ("log_id", "applied_at", "actor", "action_id", "mode", "network_tti", "domain", "kind", "subject",
               "title", "effect_metric", "effect_unit", "effect_without", "effect_with", "effect_text", "note")


def write_applied(db: Database, action: Action, situation: Situation, actor: str, applied_at: datetime,
                  note: str | None = None) -> int:
    """Log that ``actor`` applied ``action`` at ``applied_at`` (aware) in ``situation``; the ``log_id``."""
    e = action.effect
    rows = db.fetchall(
        "INSERT INTO playbook_log (applied_at, actor, action_id, mode, network_tti, domain, kind, subject, title,"
        " effect_metric, effect_unit, effect_without, effect_with, effect_text, details, note)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s) RETURNING log_id",
        (applied_at, actor, action.action_id, situation.mode, situation.network_tti, action.domain, action.kind,
         action.subject, action.title, e.metric, e.unit, e.without, e.with_action, e.text,
         orjson.dumps(action.details, option=orjson.OPT_SERIALIZE_NUMPY).decode(), note))
    return int(rows[0][0])


def read_log(db: Database, *, limit: int = 100, since: datetime | None = None,
             action_id: str | None = None) -> list[dict[str, Any]]:
    """Applied actions, newest first (at most ``limit``), optionally since a time or of one action."""
    where, params = [], []
    for clause, value in (("applied_at >= %s", since), ("action_id = %s", action_id)):
        if value is not None:
            where.append(clause)
            params.append(value)
    sql = (f"SELECT {', '.join(LOG_COLUMNS)} FROM playbook_log"
           + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY applied_at DESC, log_id DESC LIMIT %s")
    out = []
    for row in db.fetchall(sql, (*params, limit)):
        r = dict(zip(LOG_COLUMNS, row, strict=True))
        without, with_action = r.pop("effect_without"), r.pop("effect_with")
        r["effect"] = {"metric": r.pop("effect_metric"), "unit": r.pop("effect_unit"), "without": without,
                       "with_action": with_action, "text": r.pop("effect_text"),
                       "change": None if without is None or with_action is None else with_action - without}
        out.append(r)
    return out


def applied_since(db: Database, action_ids: list[str], since: datetime) -> dict[str, tuple[str, datetime]]:
    """The latest application (actor, time) of each of ``action_ids`` since ``since``."""
    if not action_ids:
        return {}
    rows = db.fetchall(
        "SELECT DISTINCT ON (action_id) action_id, actor, applied_at FROM playbook_log"
        " WHERE action_id = ANY(%s) AND applied_at >= %s ORDER BY action_id, applied_at DESC", (action_ids, since))
    return {str(a): (str(who), when) for a, who, when in rows}
