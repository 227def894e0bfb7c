"""Shared fixtures: real PostgreSQL databases and real Mosquitto brokers, never mocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from its.broker import MosquittoBroker, mosquitto_binary
from its.db import Database, migrate
from its.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"


def server_url() -> str:
    """The PostgreSQL server tests create their databases on."""
    return os.environ.get("ITS_DATABASE_URL") or DEFAULT_DB


def _with_dbname(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    return f"{head}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real data (``ITS_SHARED_DATA``, default ``../shared/data``)."""
    path = Path(os.environ.get("ITS_SHARED_DATA", REPO.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set ITS_SHARED_DATA)")
    return path


def create_database(url: str | None = None) -> str:
    """Create an empty uniquely named database on the test server; return its URL."""
    url = url or server_url()
    name = f"its_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return _with_dbname(url, name)


def drop_database(url: str) -> None:
    name = url.partition("?")[0].rsplit("/", 1)[1]
    conn = psycopg2.connect(server_url())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture
def empty_db_url() -> Iterator[str]:
    """URL of a fresh, empty database, dropped after the test."""
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture
def db_url(empty_db_url: str) -> str:
    """URL of a fresh migrated database."""
    database = Database(empty_db_url)
    migrate(database)
    database.close()
    return empty_db_url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A pool on a fresh migrated database."""
    database = Database(db_url)
    yield database
    database.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A Mosquitto started by the test with the platform's config on a free port."""
    if mosquitto_binary(None) is None:
        pytest.skip("no mosquitto binary on this machine")
    b = MosquittoBroker(tmp_path / "mosquitto")
    b.start()
    yield b
    b.stop()


@pytest.fixture
def broker_url(broker: MosquittoBroker) -> str:
    return broker.url


@pytest.fixture
def settings(tmp_path: Path, db_url: str, broker_url: str) -> Settings:
    """Settings pointing at a fresh database and a test broker, data dir under tmp."""
    return load_settings(database_url=db_url, mqtt_url=broker_url, data_dir=tmp_path / "data")


@pytest.fixture
def city_settings(settings: Settings, shared_data: Path) -> Settings:
    """``settings`` whose database holds the demo city: Cairns GTFS, its road network, parking sites."""
    from its.bench.api import load_demo_city

    load_demo_city(settings, shared_data / "gtfs" / "cairns_gtfs.zip")
    return settings
