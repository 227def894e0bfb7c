"""Database access: connection pool, migrations, batch COPY writes, time-series backend.

The one place that knows whether TimescaleDB is present. Time-series tables are created by
the SQL helper ``its_create_timeseries`` (see ``migrations/0001_core.sql``); on the native
path this module creates the daily partitions a batch needs before it writes.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.pool
from psycopg2 import sql

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "copy_rows",
    "drop_expired_partitions",
    "ensure_partitions",
    "migrate",
    "migration_files",
    "refresh_aggregate",
    "timeseries_backend",
    "timeseries_columns",
    "upsert_rows",
]

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 7_310_2024  # advisory lock key held while migrating


class Database:
    """A psycopg2 threaded connection pool.

    Parameters
    ----------
    url : str
        libpq URL, e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``.
    minconn, maxconn : int
        Pool bounds.
    """

    def __init__(self, url: str, minconn: int = 1, maxconn: int = 8) -> None:
        self.url = url
        self._pool = psycopg2.pool.ThreadedConnectionPool(
            minconn, maxconn, url, application_name="its", connect_timeout=5
        )
        self._closed = False

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """Yield a pooled connection; commit on success, roll back on error.

        A connection that failed at the socket level is discarded, not returned.
        """
        conn = self._pool.getconn()
        broken = False
        try:
            yield conn
            conn.commit()
        except BaseException as exc:
            broken = isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError)
            _forget_partitions(conn.dsn)  # partitions this transaction made are rolled back with it
            try:
                if not conn.closed:
                    conn.rollback()
            except psycopg2.Error:
                broken = True
            raise
        finally:
            self._pool.putconn(conn, close=broken or bool(conn.closed))

    def fetchall(self, query: str | sql.Composable, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query and return all rows."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return list(cur.fetchall())

    def execute(self, query: str | sql.Composable, params: Sequence[Any] | dict[str, Any] | None = None) -> int:
        """Run a statement; return the affected row count."""
        with self.connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            return int(cur.rowcount)

    def ping(self) -> bool:
        """True when the server answers ``SELECT 1``."""
        try:
            return self.fetchall("SELECT 1") == [(1,)]
        except psycopg2.Error:
            return False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pool.closeall()


# --------------------------------------------------------------------------- migrations

def migration_files(directories: Sequence[Path] | None = None) -> list[Path]:
    """Every migration file, in file-name order across directories.

    ``directories`` defaults to the kernel's own (``its/migrations``) plus the ``migrations``
    directory of every registered domain (:func:`its.domain.registered`). File names carry
    globally unique numbers (kernel 0001-0099 and 0500-0599, each domain its range).
    """
    from its.domain import registered

    dirs = list(directories) if directories is not None else \
        [MIGRATIONS_DIR, *(d.migrations for d in registered() if d.migrations is not None)]
    files = sorted((p for d in dirs for p in d.glob("*.sql")), key=lambda p: p.name)
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen:
            raise ValueError(f"migration {path.stem} exists twice: {seen[path.stem]} and {path}")
        seen[path.stem] = path
    return files


def migrate(db: Database, directories: Sequence[Path] | None = None) -> list[str]:
    """Apply every migration not yet recorded, in file-name order (see `migration_files`).

    Safe to run concurrently (session advisory lock) and repeatedly (idempotent).

    Returns
    -------
    list of str
        Versions applied by this call.
    """
    applied_now: list[str] = []
    with db.connection() as conn:
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
                try:
                    _enable_timescale(cur)
                    cur.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                    )
                    cur.execute("SELECT version FROM schema_migrations")
                    done = {r[0] for r in cur.fetchall()}
                    for path in migration_files(directories):
                        version = path.stem
                        if version in done:
                            continue
                        log.info("applying migration %s", version)
                        cur.execute("BEGIN")
                        try:
                            cur.execute(path.read_text())
                            cur.execute("INSERT INTO schema_migrations(version) VALUES (%s)", (version,))
                            cur.execute("COMMIT")
                        except Exception:
                            cur.execute("ROLLBACK")
                            raise
                        applied_now.append(version)
                    _materialize_rollups(cur)
                finally:
                    cur.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
        finally:
            conn.autocommit = False
    dsn = _dsn(db)
    _native_cache.pop(dsn, None)
    _time_columns.pop(dsn, None)
    ensure_partitions(db, datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=7))
    return applied_now


def _enable_timescale(cur: psycopg2.extensions.cursor) -> None:
    cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
    if not cur.fetchone():
        return
    cur.execute("SHOW shared_preload_libraries")
    row = cur.fetchone()
    if not row or "timescaledb" not in str(row[0]):
        log.info("timescaledb installed but not preloaded; using native partitions")
        return
    try:
        cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg2.Error as exc:  # not preloaded: use the native path
        log.info("timescaledb present but not loadable (%s); using native partitions", exc.pgerror)


#: Where rollup buckets start on both paths (TimescaleDB's default is 2000-01-03, a Monday).
BUCKET_ORIGIN = "TIMESTAMPTZ '2000-01-01 00:00:00+00'"


def _materialize_rollups(cur: psycopg2.extensions.cursor) -> None:
    """Create the views registered with ``its_register_rollup`` (outside a transaction)."""
    timescale = _has_timescale(cur)
    cur.execute(
        "SELECT view_name, source_table, time_column, bucket::text, query FROM its_rollups"
        " WHERE NOT materialized ORDER BY view_name"
    )
    for view, source, tcol, bucket, query in cur.fetchall():
        if timescale:
            # same origin as date_bin below, so weekly and longer buckets agree on both paths
            bucket_sql = f"time_bucket('{bucket}'::interval, {tcol}, origin => {BUCKET_ORIGIN})"
            body = query.replace("{bucket}", bucket_sql)
            cur.execute(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} WITH (timescaledb.continuous) AS {body} WITH NO DATA")
            cur.execute(
                "SELECT add_continuous_aggregate_policy(%s, start_offset => NULL,"
                " end_offset => %s::interval, schedule_interval => %s::interval, if_not_exists => true)",
                (view, bucket, bucket),
            )
            cur.execute("ALTER MATERIALIZED VIEW " + view + " SET (timescaledb.materialized_only = false)")
        else:
            bucket_sql = f"date_bin('{bucket}'::interval, {tcol}, {BUCKET_ORIGIN})"
            body = query.replace("{bucket}", bucket_sql)
            cur.execute(f"CREATE OR REPLACE VIEW {view} AS {body}")
        cur.execute("UPDATE its_rollups SET materialized = true WHERE view_name = %s", (view,))
        _ = source


def _has_timescale(cur: psycopg2.extensions.cursor) -> bool:
    cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return cur.fetchone() is not None


def _dsn(db: Database) -> str:
    with db.connection() as conn:
        return str(conn.dsn)


def timeseries_backend(db: Database) -> str:
    """``"timescaledb"`` when the extension is installed in this database, else ``"native"``."""
    rows = db.fetchall("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
    return "timescaledb" if rows else "native"


# --------------------------------------------------------------------------- partitions

_known_partitions: dict[tuple[str, str], set[date]] = {}
_partition_lock = threading.Lock()


def _forget_partitions(dsn: str) -> None:
    """Forget which partitions of database ``dsn`` exist (they are checked again on the next write)."""
    with _partition_lock:
        for key in [k for k in _known_partitions if k[0] == dsn]:
            del _known_partitions[key]


def _native_tables(cur: psycopg2.extensions.cursor) -> dict[str, str]:
    cur.execute("SELECT table_name, time_column FROM its_timeseries WHERE backend = 'native'")
    return {r[0]: r[1] for r in cur.fetchall()}


def ensure_partitions(db: Database, start: datetime, end: datetime, table: str | None = None) -> None:
    """Create the daily partitions covering ``[start, end]`` (UTC) for native time-series tables."""
    with db.connection() as conn, conn.cursor() as cur:
        _ensure_partitions_cur(conn, cur, start, end, table)


def _ensure_partitions_cur(
    conn: psycopg2.extensions.connection,
    cur: psycopg2.extensions.cursor,
    start: datetime,
    end: datetime,
    table: str | None,
) -> None:
    tables = _native_tables(cur)
    if table is not None:
        tables = {table: tables[table]} if table in tables else {}
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    if (last - first).days > 3700:
        raise ValueError(f"refusing to create {(last - first).days} daily partitions at once")
    key = conn.dsn
    for name in tables:
        with _partition_lock:
            known = _known_partitions.setdefault((key, name), set())
            wanted = [first + timedelta(days=i) for i in range((last - first).days + 1)]
            missing = [d for d in wanted if d not in known]
        if missing:
            cur.execute(
                "SELECT its_ensure_partitions(%s, %s::date, %s::date)",
                (name, min(missing), max(missing)),
            )
            with _partition_lock:
                known.update(missing)


def drop_expired_partitions(db: Database, retention_days: float, table: str | None = None) -> list[str]:
    """Drop time-series data older than ``retention_days`` (days); return what was dropped.

    Native path: daily partitions that end before the cutoff; TimescaleDB: chunks
    (``drop_chunks``). ``table`` limits it to one time-series table (default: all of them).
    """
    if retention_days <= 0:
        return []
    cutoff = datetime.now(UTC) - timedelta(days=retention_days)
    if table is None:
        rows = db.fetchall("SELECT its_drop_partitions_before(%s::timestamptz)", (cutoff,))
    else:
        rows = db.fetchall("SELECT its_drop_partitions_before(%s::timestamptz, %s::text)", (cutoff, table))
    dropped = list(rows[0][0] or []) if rows else []
    hypertables = db.fetchall(
        "SELECT table_name FROM its_timeseries WHERE backend = 'timescaledb' AND (%s::text IS NULL OR table_name = %s)",
        (table, table),
    )
    for (name,) in hypertables:
        chunks = db.fetchall("SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz)::text", (name, cutoff))
        dropped += [c for (c,) in chunks]
    if dropped:
        with _partition_lock:  # a later write for a dropped day makes its partition again
            for known in _known_partitions.values():
                known.clear()
    return dropped


# --------------------------------------------------------------------------- batch writes

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: Any) -> str:
    """One value in COPY text format (``\\N`` for NULL, escapes for tab/newline/backslash)."""
    kind = type(value)
    if kind is str:
        return value.translate(_COPY_ESCAPES)  # type: ignore[no-any-return]
    if kind is float:
        return "NaN" if value != value else repr(value)
    if kind is int:
        return str(value)
    if value is None:
        return "\\N"
    if kind is bool:
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\\\x" + bytes(value).hex()
    return str(value).translate(_COPY_ESCAPES)


def _stage(
    conn: psycopg2.extensions.connection,
    cur: psycopg2.extensions.cursor,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> str:
    stage = f"_stage_{table}"
    cur.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
            sql.Identifier(stage), sql.Identifier(table)
        )
    )
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join(_copy_text(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    cur.copy_expert(sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(stage), cols).as_string(conn), buf)
    tables = _native_tables_cached(conn, cur)
    if table in tables:
        tcol = tables[table]
        cur.execute(sql.SQL("SELECT min({c}), max({c}) FROM {s}").format(c=sql.Identifier(tcol), s=sql.Identifier(stage)))
        lo, hi = cur.fetchone()
        if lo is not None:
            _ensure_partitions_cur(conn, cur, lo, hi, table)
    return stage


_native_cache: dict[str, dict[str, str]] = {}
_time_columns: dict[str, tuple[float, dict[str, str]]] = {}


def timeseries_columns(conn: psycopg2.extensions.connection, max_age_s: float = 60.0) -> dict[str, str]:
    """``{table: time column}`` of every time-series table (either backend), cached per database
    for ``max_age_s`` seconds (tables made later are seen after that)."""
    cached = _time_columns.get(conn.dsn)
    if cached is not None and time.monotonic() - cached[0] < max_age_s:
        return cached[1]
    with conn.cursor() as cur:
        cur.execute("SELECT table_name, time_column FROM its_timeseries")
        columns = {r[0]: r[1] for r in cur.fetchall()}
    _time_columns[conn.dsn] = (time.monotonic(), columns)
    return columns


def _native_tables_cached(conn: psycopg2.extensions.connection, cur: psycopg2.extensions.cursor) -> dict[str, str]:
    tables = _native_cache.get(conn.dsn)
    if tables is None:
        tables = _native_tables(cur)
        _native_cache[conn.dsn] = tables
    return tables


def copy_rows(
    conn: psycopg2.extensions.connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
) -> int:
    """COPY rows into ``table``, skipping rows whose key already exists.

    Rows go through a temporary staging table, then ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING``, so redelivered messages are harmless. Runs inside the caller's transaction.

    Returns
    -------
    int
        Number of rows inserted (duplicates excluded).
    """
    with conn.cursor() as cur:
        stage = _stage(conn, cur, table, columns, rows)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        cur.execute(
            sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM {s} ON CONFLICT DO NOTHING").format(
                t=sql.Identifier(table), c=cols, s=sql.Identifier(stage)
            )
        )
        inserted = int(cur.rowcount)
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(stage)))
        return inserted


def upsert_rows(
    conn: psycopg2.extensions.connection,
    table: str,
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    key_columns: Sequence[str],
) -> int:
    """COPY rows into ``table``, updating the non-key columns of rows whose key exists.

    Within one batch the last row for a key wins.
    """
    with conn.cursor() as cur:
        stage = _stage(conn, cur, table, columns, rows)
        cols = sql.SQL(", ").join(map(sql.Identifier, columns))
        keys = sql.SQL(", ").join(map(sql.Identifier, key_columns))
        others = [c for c in columns if c not in key_columns]
        update = (
            sql.SQL("DO UPDATE SET ")
            + sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(c)) for c in others)
            if others
            else sql.SQL("DO NOTHING")
        )
        cur.execute(
            sql.SQL(
                "INSERT INTO {t} ({c}) SELECT DISTINCT ON ({k}) {c} FROM (SELECT *, ctid AS _o FROM {s}) x"
                " ORDER BY {k}, _o DESC ON CONFLICT ({k}) "
            ).format(t=sql.Identifier(table), c=cols, k=keys, s=sql.Identifier(stage))
            + update
        )
        n = int(cur.rowcount)
        cur.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(stage)))
        return n


def refresh_aggregate(url: str, view: str, lo: datetime | None, hi: datetime | None, attempts: int = 20) -> None:
    """``CALL refresh_continuous_aggregate`` over ``[lo, hi)`` on its own autocommit connection
    (it cannot run in a transaction), waiting for a concurrent refresh (the policy's) to
    finish: up to ``attempts`` tries 0.5 s apart. TimescaleDB only."""
    conn = psycopg2.connect(url, application_name="its-refresh")
    try:
        conn.autocommit = True
        for attempt in range(attempts):
            try:
                with conn.cursor() as cur:
                    cur.execute("CALL refresh_continuous_aggregate(%s, %s, %s)", (view, lo, hi))
                return
            except psycopg2.errors.LockNotAvailable:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.5)
    finally:
        conn.close()
