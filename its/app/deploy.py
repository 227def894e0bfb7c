"""``its deploy``: the files a Docker Compose deployment needs, and the demo city's timetable.

``its deploy init DIR`` writes, under the compose project directory ``DIR`` (the folder of
``docker-compose.yml``):

- ``.env``: random secrets (database password, one MQTT password per platform role, the
  session secret shared by the API replicas, the Grafana admin password) and the uid/gid the
  broker runs as. Values already there are kept, so re-running never rotates a secret.
- ``deploy/mosquitto/passwd`` and ``deploy/mosquitto/acl``: the broker's accounts. The
  platform roles (:data:`ROLES`) each get their own password and topics; with
  ``--from-registry`` every active device of the device registry (``its devices add``) is
  added too, allowed only its own topics (`its.device_registry.acl_text`).
- ``deploy/cameras.yaml``: an example camera (kept when present), and the folders
  ``deploy/broker-data`` (broker persistence) and ``deploy/video`` (clips, ``ITS_VIDEO_DIR``).

``its deploy demo-feed`` is the demo profile's one-shot service: it imports the Cairns
timetable in a time zone where buses run now (as ``its demo`` does) and writes the copy the
simulator drives.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "COMMANDS",
    "ROLES",
    "Role",
    "Written",
    "broker_acl",
    "deploy_demo_feed",
    "deploy_init",
    "env_values",
    "read_env",
    "role_topics",
    "write_deployment",
]

#: uid/gid of the ``mosquitto`` user of the eclipse-mosquitto image: the broker runs as this
#: when ``its deploy init`` runs as root (it then hands the broker's files to it).
MOSQUITTO_UID = 1883


@dataclass(frozen=True)
class Role:
    """A platform account on the broker.

    Attributes
    ----------
    user : str
        MQTT user name.
    env : str
        ``.env`` variable holding its clear password (compose puts it in the service's URL).
    service : str
        The compose service(s) using it.
    writes : tuple of str
        Device kinds whose topics it may publish, for every device id (``+``); ``camera``
        also covers the cameras' status topics.
    reads : tuple of str
        Topic filters it may subscribe to. The ``collector`` and ``platform`` accounts' topics
        come from `its.device_registry.acl_text` (the registry's own platform accounts).
    """

    user: str
    env: str
    service: str
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()


ROLES: tuple[Role, ...] = (
    Role("collector", "ITS_MQTT_COLLECTOR_PASSWORD", "collector"),
    Role("platform", "ITS_MQTT_PLATFORM_PASSWORD", "api, migrate"),
    Role("camera-worker", "ITS_MQTT_CAMERA_PASSWORD", "video", writes=("camera",)),
    Role("simulator", "ITS_MQTT_SIMULATOR_PASSWORD", "simulator",
         writes=("vehicle", "parking-sensor", "parking-counter")),
    Role("healthcheck", "ITS_MQTT_HEALTHCHECK_PASSWORD", "broker (its healthcheck)",
         reads=("$SYS/broker/uptime",)),
)

#: Other secrets of ``.env``: variable → what it protects.
SECRETS = {
    "ITS_DB_PASSWORD": "PostgreSQL user `its`",
    "ITS_SESSION_SECRET": "dispatcher sessions and CSRF tokens (shared by the API replicas)",
    "ITS_GRAFANA_ADMIN_PASSWORD": "Grafana user `admin` (profile monitoring)",
}

CAMERAS_EXAMPLE = """\
# Cameras of this deployment, read by the `video` service (`its video run --config
# /etc/its/cameras.yaml`); restart it after an edit: `docker compose restart video`.
# Schema and every option: video/data/cameras.example.yaml. A source is an rtsp:// or http(s)://
# URL, or a file under ITS_VIDEO_DIR (.env), which compose mounts read-only at /srv/its/video.
interval_s: 60
cameras:
  - id: example-1
    # replace with your camera's stream, e.g. rtsp://user:password@10.0.0.21:554/stream1;
    # this example replays a clip (copy haar_video2.avi of the shared data into ITS_VIDEO_DIR)
    source: /srv/its/video/haar_video2.avi
    loop: true
    lines:
      # directed line across the road, image pixels x1, y1, x2, y2
      - {id: lanes-150, points: [30, 150, 300, 150]}
"""


def role_topics(role: Role, kinds: Mapping[str, tuple[str, ...]]) -> list[str]:
    """The ACL lines of ``role`` (``topic write ...`` / ``topic read ...``).

    Parameters
    ----------
    kinds : mapping
        Device kind → topics it publishes with ``{id}``/``{site}``/``{space}`` placeholders
        (`its.app.registry.device_kinds`).
    """
    from its.devices import device_status_topic

    lines = []
    for kind in role.writes:
        if kind not in kinds:
            raise ValueError(f"role {role.user}: unknown device kind {kind!r}")
        lines += [f"topic write {t.format(id='+', site='+', space='+')}" for t in kinds[kind]]
        lines.append(f"topic write {device_status_topic(kind, '+')}")
    lines += [f"topic read {t}" for t in role.reads]
    return lines


def broker_acl(devices: list[tuple[str, str]], kinds: Mapping[str, tuple[str, ...]]) -> str:
    """The broker's ACL: the registry's accounts and devices, then the other platform roles.

    Raises
    ------
    ValueError
        When a registered device id is a role's user name (it would inherit the role's topics).
    """
    from its.device_registry import acl_text

    taken = {r.user for r in ROLES} & {d for d, _ in devices}
    if taken:
        raise ValueError(f"device ids {sorted(taken)} are platform account names; revoke and re-register them")
    blocks = [acl_text(devices).rstrip("\n")]
    for role in ROLES:
        extra = role_topics(role, kinds)
        if extra:
            blocks.append("\n".join([f"user {role.user}", *extra]))
    return "# written by `its deploy init`; regenerate rather than edit\n" + "\n\n".join(blocks) + "\n"


def read_env(path: Path) -> dict[str, str]:
    """``KEY=value`` pairs of a compose ``.env`` file (comments and blank lines skipped)."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if "=" in line and not line.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def env_values(existing: Mapping[str, str], uid: int, gid: int) -> dict[str, str]:
    """Every ``.env`` value: those in ``existing`` kept, missing secrets drawn at random."""
    values = dict(existing)
    for name in (*SECRETS, *(r.env for r in ROLES)):
        if not values.get(name):
            values[name] = secrets.token_urlsafe(24)  # URL-safe: it goes into mqtt:// and postgresql:// URLs
    values.setdefault("ITS_BROKER_UID", str(uid))
    values.setdefault("ITS_BROKER_GID", str(gid))
    values.setdefault("ITS_VIDEO_DIR", "./deploy/video")
    return values


def _env_text(values: Mapping[str, str]) -> str:
    lines = ["# written by `its deploy init` (existing values are kept); keep this file secret", ""]
    described = {**SECRETS, **{r.env: f"MQTT user `{r.user}` ({r.service})" for r in ROLES}}
    for name, value in values.items():
        if name in described:
            lines.append(f"# {described[name]}")
        lines.append(f"{name}={value}")
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` atomically (the broker, reloading on SIGHUP, never reads half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Written:
    """What `write_deployment` wrote (``cameras`` may be the operator's, kept)."""

    env: Path
    passwd: Path
    acl: Path
    cameras: Path
    devices: int


def write_deployment(directory: Path, db: Any = None) -> Written:
    """Write ``.env``, the broker's passwd/ACL, the example cameras file and the folders.

    Parameters
    ----------
    directory : Path
        The compose project directory.
    db : its.db.Database, optional
        The platform database: its active registered devices join the broker's accounts.

    Raises
    ------
    ValueError
        A registered device id is a role's user name.
    """
    from its.app.registry import device_kinds
    from its.device_registry import list_devices, mosquitto_password_hash, write_broker_auth

    root = os.getuid() == 0
    uid, gid = (MOSQUITTO_UID, MOSQUITTO_UID) if root else (os.getuid(), os.getgid())
    env_path = directory / ".env"
    values = env_values(read_env(env_path), uid, gid)
    _write(env_path, _env_text(values), 0o600)
    broker_owner = (int(values["ITS_BROKER_UID"]), int(values["ITS_BROKER_GID"])) if root else None
    passwords = {r.user: values[r.env] for r in ROLES}
    conf_dir = directory / "deploy" / "mosquitto"
    devices: list[tuple[str, str]] = []
    if db is not None:
        devices = [(d, k) for d, k, active in list_devices(db) if active]
        acl = broker_acl(devices, device_kinds())  # refuses a device named like a role first
        with tempfile.TemporaryDirectory() as tmp:
            passwd_text = write_broker_auth(db, Path(tmp), passwords)[0].read_text()
    else:
        acl = broker_acl(devices, device_kinds())
        passwd_text = ""
    # the registry writes its own platform accounts; every other role of this deployment too
    present = {line.split(":", 1)[0] for line in passwd_text.splitlines() if line}
    passwd_text += "".join(f"{user}:{mosquitto_password_hash(pw)}\n" for user, pw in passwords.items()
                           if user not in present)
    _write(conf_dir / "passwd", passwd_text, 0o600, broker_owner)
    _write(conf_dir / "acl", acl, 0o600, broker_owner)
    for sub in ("broker-data", "video"):
        (directory / "deploy" / sub).mkdir(parents=True, exist_ok=True)
    if broker_owner is not None:
        os.chown(directory / "deploy" / "broker-data", *broker_owner)
    cameras = directory / "deploy" / "cameras.yaml"
    if not cameras.exists():
        _write(cameras, CAMERAS_EXAMPLE, 0o644)
    return Written(env_path, conf_dir / "passwd", conf_dir / "acl", cameras, len(devices))


def deploy_init(
    directory: Annotated[Path, typer.Argument(help="Compose project directory (where docker-compose.yml is).")] = Path("."),
    from_registry: Annotated[bool, typer.Option(
        help="Add the active devices of the device registry (ITS_DATABASE_URL) to the broker's accounts.")] = False,
) -> None:
    """Write .env (random secrets, kept on re-runs), the broker's passwd and ACL, an example cameras.yaml."""
    if not (directory / "docker-compose.yml").exists():
        typer.echo(f"error: {directory} has no docker-compose.yml", err=True)
        raise typer.Exit(2)
    if from_registry:
        from its.commands import platform_db, settings_or_exit

        with platform_db(settings_or_exit()) as db:
            written = write_deployment(directory, db)
    else:
        try:
            written = write_deployment(directory)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    for what, path in (("env", written.env), ("passwd", written.passwd), ("acl", written.acl),
                       ("cameras", written.cameras)):
        typer.echo(f"{what:<8} {path}")
    typer.echo(f"broker accounts: {', '.join(r.user for r in ROLES)} and {written.devices} device(s); "
               "a running broker reloads them on `docker compose kill -s HUP broker`")


def deploy_demo_feed(
    gtfs: Annotated[Path, typer.Option("--gtfs", help="The demo city's GTFS zip (the image holds Cairns').")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the feed the simulator drives (feed.zip).")],
    agency: Annotated[str, typer.Option(help="Agency id of the imported feed and the simulated topics.")] = "cairns",
) -> None:
    """Import the demo timetable in a time zone where its buses run now; write the simulator's copy."""
    from its.app.demo import demo_timezone, feed_in_timezone
    from its.commands import platform_db, settings_or_exit
    from telematics.gtfs import FeedError, read_feed
    from telematics.gtfs.database import import_feed_file

    try:
        tz = demo_timezone(read_feed(gtfs))
    except (FeedError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        shifted = feed_in_timezone(gtfs, tz, Path(tmp))
        staged = Path(tmp) / "feed.zip.new"
        shutil.copyfile(shifted, staged)
        os.replace(staged, out / "feed.zip")
    with platform_db(settings_or_exit()) as db:
        result = import_feed_file(db, out / "feed.zip", agency, rebase_to=date.today())
    typer.echo(f"agency {result.agency}: feed version {result.feed_version} active, timetable in {tz}; "
               f"simulator feed {out / 'feed.zip'}")


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("deploy", "init", deploy_init),
    ("deploy", "demo-feed", deploy_demo_feed),
]
