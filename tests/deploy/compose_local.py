"""docker-compose.yml as local processes (no Docker engine runs on the development machines).

Every service is started as its container would be: its ``command`` (``its`` is this
checkout's CLI, ``python`` this interpreter) with only its ``environment`` and the image's
``ENV``, as the image's user (the Dockerfile's ``USER``, or the service's ``user:``) when the
test runs as root, under a hostname of its own (a UTS namespace, as each container has).
Compose variables are interpolated from the project's ``.env`` and the given overrides
(``${VAR:-default}``, ``${VAR:?message}``, ``$$``). A mount becomes a path translation:
container path → host path (bind mounts, relative to the project), a folder under the scratch
directory (named volumes), or a file the test built as the Dockerfile builds it (the image's
own files). A config file mounted on its own is copied with its container paths translated.
Each service hostname and container port maps to a free loopback port, in URLs (``db:5432``,
``127.0.0.1:8000`` inside the service itself) and after ``--port``-like options.

Two images are third-party servers, run from this machine's binaries:

- ``timescale/*``: the machine's PostgreSQL; the role and database the image would create
  from ``POSTGRES_USER``/``POSTGRES_PASSWORD``/``POSTGRES_DB`` are created fresh (names
  suffixed so runs never meet) and dropped at the end.
- ``eclipse-mosquitto``: ``mosquitto -c`` the mounted ``mosquitto.conf``, its paths and listener
  translated.

Healthchecks are the file's own commands, run with the service's environment. ``depends_on``
conditions (``service_healthy``, ``service_completed_successfully``, ``required: false``) are
honoured. Images this machine cannot run (Prometheus, Grafana) are refused with their names.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg2
import yaml

REPO = Path(__file__).resolve().parents[2]
PG_SERVER = os.environ.get("ITS_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
KNOWN_PORTS = {"timescale/": 5432, "postgres": 5432, "eclipse-mosquitto": 1883}
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class ComposeError(RuntimeError):
    """The compose file asks for something that cannot be honoured."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose variable interpolation of one string."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        val = env.get(name)
        unset = val is None or (op is not None and op.startswith(":") and val == "")
        if op in ("-", ":-"):
            return arg if unset else str(val)
        if op in ("?", ":?"):
            if unset:
                raise ComposeError(f"{name}: {arg}")
            return str(val)
        return "" if val is None else str(val)

    return _VAR.sub(one, value)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln and not ln.lstrip().startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def load_compose(project: Path, overrides: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The project's docker-compose.yml, interpolated as ``docker compose config`` would."""
    env = {**read_dotenv(project / ".env"), **(overrides or {})}
    raw = yaml.safe_load((project / "docker-compose.yml").read_text())
    return _interpolate_tree(raw, env)  # type: ignore[no-any-return]


@dataclass
class Dockerfile:
    """The final stage of the Dockerfile: its user and environment."""

    user: tuple[int, int]
    env: dict[str, str]
    text: str

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        text = path.read_text()
        lines = re.sub(r"\\\n", " ", text).splitlines()
        last_from = max(i for i, ln in enumerate(lines) if ln.startswith("FROM "))
        env: dict[str, str] = {}
        user = "root"
        for ln in lines[last_from:]:
            if ln.startswith("ENV "):
                env.update(tuple(tok.split("=", 1)) for tok in shlex.split(ln[4:]))  # type: ignore[misc]
            elif ln.startswith("USER "):
                user = ln[5:].strip()
        uid, _, gid = user.partition(":")
        if not uid.isdigit():
            raise ComposeError(f"USER {user}: give a numeric uid:gid")
        return cls((int(uid), int(gid or uid)), env, text)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    service: str
    index: int
    hostname: str
    ports: dict[int, int] = field(default_factory=dict)  # container port → local port
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    healthy: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None

    def url(self, port: int, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def log_tail(self, n: int = 40) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


class LocalCompose:
    """Run a compose project as local processes; see the module docstring.

    Parameters
    ----------
    project : Path
        Folder with docker-compose.yml, .env and deploy/.
    scratch : Path
        Named volumes, translated configs and logs go here (must be traversable by the
        services' users).
    image_files : mapping
        Container path → host path of files the image holds (built by the test as the
        Dockerfile builds them).
    overrides : mapping
        Variables set in the shell running ``docker compose`` (they win over ``.env``).
    profiles : sequence of str
        Active profiles.
    """

    def __init__(self, project: Path, scratch: Path, image_files: Mapping[str, Path],
                 overrides: Mapping[str, str] | None = None, profiles: tuple[str, ...] = ()) -> None:
        self.project, self.scratch = project, scratch
        self.image_files = dict(image_files)
        self.config = load_compose(project, overrides)
        self.dockerfile = Dockerfile.parse(REPO / "Dockerfile")
        self.root = os.getuid() == 0
        self.suffix = uuid.uuid4().hex[:8]
        self.pg_names: dict[str, str] = {}
        self.pg_created: list[tuple[str, str]] = []
        self.services: dict[str, dict[str, Any]] = {
            name: svc for name, svc in self.config["services"].items()
            if not svc.get("profiles") or set(svc["profiles"]) & set(profiles)}
        self.replicas: dict[str, list[Replica]] = {}
        for name, svc in self.services.items():
            n = int(svc.get("deploy", {}).get("replicas", 1))
            self.replicas[name] = [Replica(name, i, f"{name}-{i + 1}") for i in range(n)]
            for r in self.replicas[name]:
                r.ports = {p: free_port() for p in self._container_ports(svc)}
                if self.kind(name) == "postgres":  # the machine's server stands in for the container's
                    r.ports = {5432: urlsplit(PG_SERVER).port or 5432}
        self.volumes = scratch / "volumes"
        self.logs = scratch / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    # ------------------------------------------------------------------ the file
    def _container_ports(self, svc: dict[str, Any]) -> set[int]:
        ports = {int(str(p)) for p in svc.get("expose", [])}
        for spec in svc.get("ports", []):
            ports.add(int(str(spec).rsplit(":", 1)[-1].split("/")[0]))
        image = str(svc.get("image", ""))
        ports |= {p for prefix, p in KNOWN_PORTS.items() if image.startswith(prefix)}
        return ports

    def built(self, name: str) -> bool:
        """True for services whose image is built from this repository's Dockerfile."""
        return "build" in self.services[name]

    def kind(self, name: str) -> str:
        svc = self.services[name]
        if self.built(name):
            return "platform"
        image = str(svc.get("image", ""))
        if image.startswith(("timescale/", "postgres")):
            return "postgres"
        if image.startswith("eclipse-mosquitto"):
            return "mosquitto"
        raise ComposeError(f"service {name}: image {image} cannot run on this machine")

    def mounts(self, name: str, extra: Mapping[str, Path] | None = None) -> list[tuple[str, Path]]:
        """(container path, host path), longest container path first."""
        out: list[tuple[str, Path]] = []
        if self.built(name):
            out += [(c, Path(h)) for c, h in self.image_files.items()]
        for spec in self.services[name].get("volumes", []):
            parts = str(spec).split(":")
            src, dst = parts[0], parts[1]
            if src.startswith((".", "/")):
                host = (self.project / src).resolve() if src.startswith(".") else Path(src)
            else:
                host = self.volumes / src
                if not host.exists():
                    host.mkdir(parents=True)
                    if self.root and self.built(name):
                        os.chown(host, *self.dockerfile.user)  # a new volume takes the image folder's owner
            out.append((dst, host))
        out += [(c, Path(h)) for c, h in (extra or {}).items()]
        return sorted(out, key=lambda m: -len(m[0]))

    # ------------------------------------------------------------------ translation
    def _port_of(self, host: str, port: int, me: Replica | None) -> int | None:
        if host in ("127.0.0.1", "localhost", "0.0.0.0"):
            return me.ports.get(port) if me is not None else None
        if self.replicas.get(host):
            return self.replicas[host][0].ports.get(port)
        return None

    def translate(self, text: str, me: Replica | None, mounts: list[tuple[str, Path]]) -> str:
        """Container view → this machine: hosts and ports, postgres names, paths."""
        def pg(m: re.Match[str]) -> str:
            user, rest, host, port, db = m.group(1), m.group(2) or "", m.group(3), int(m.group(4)), m.group(5)
            local = self._port_of(host, port, me)
            if local is None:
                return m.group(0)
            return f"postgresql://{self.pg_names.get(user, user)}{rest}@127.0.0.1:{local}/{self.pg_names.get(db, db)}"

        text = re.sub(r"postgres(?:ql)?://([^:@/\s]+)(:[^@\s]*)?@([\w.-]+):(\d+)/(\w+)", pg, text)

        def hostport(m: re.Match[str]) -> str:
            local = self._port_of(m.group(1), int(m.group(2)), me)
            return m.group(0) if local is None else f"127.0.0.1:{local}"

        names = "|".join(re.escape(n) for n in [*self.replicas, "127.0.0.1", "localhost", "0.0.0.0"])
        text = re.sub(rf"(?<![\w.-])({names}):(\d+)(?!\d)", hostport, text)
        for container, host in mounts:
            text = re.sub(rf"(?<![\w.-]){re.escape(container)}(?=/|\b|$)", str(host), text)
        return text

    def _argv(self, argv: list[str], me: Replica, mounts: list[tuple[str, Path]]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(argv):
            if i > 0 and argv[i - 1].endswith("port") and arg.isdigit() and int(arg) in me.ports:
                out.append(str(me.ports[int(arg)]))
            elif arg == "0.0.0.0":
                out.append("127.0.0.1")
            else:
                out.append(self.translate(arg, me, mounts))
        if out and out[0] == "its":
            out = [sys.executable, "-m", "its.app.cli", *out[1:]]
        elif out and out[0] == "python":
            out = [sys.executable, *out[1:]]
        return out

    def env(self, name: str, me: Replica, mounts: list[tuple[str, Path]]) -> dict[str, str]:
        """The container's environment on this machine."""
        svc = self.services[name]
        env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
               "HOSTNAME": me.hostname, "LANG": "C.UTF-8"}
        if self.built(name):
            env |= {k: self.translate(v, me, mounts) for k, v in self.dockerfile.env.items()}
            env["PYTHONPATH"] = str(REPO)  # the image installs this checkout
            env["HOME"] = env.get("ITS_DATA_DIR", str(self.scratch))
        raw = svc.get("environment", {})
        items = raw.items() if isinstance(raw, dict) else (str(e).split("=", 1) for e in raw)
        for k, v in items:
            env[k] = self.translate("" if v is None else str(v), me, mounts)
        if self.kind(name) == "postgres":
            env["POSTGRES_USER"] = self.pg_names.get(env["POSTGRES_USER"], env["POSTGRES_USER"])
            env["POSTGRES_DB"] = self.pg_names.get(env["POSTGRES_DB"], env["POSTGRES_DB"])
        return env

    def _as_user(self, name: str, me: Replica, argv: list[str], user: str | None = None) -> list[str]:
        """Wrap ``argv``: own hostname (UTS namespace), then the image's or service's user."""
        if not self.root:  # a user namespace gives the hostname; the uid stays this user's
            return ["unshare", "-r", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', me.hostname, *argv] \
                if self.built(name) else argv
        spec = user or self.services[name].get("user")
        uid, gid = self.dockerfile.user if spec is None and self.built(name) else (
            tuple(int(x) for x in str(spec).split(":")) if spec is not None else (0, 0))
        drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--"] if uid else []
        return ["unshare", "--uts", "--", "sh", "-c", 'hostname "$0" && exec "$@"', me.hostname, *drop, *argv]

    # ------------------------------------------------------------------ running
    def _start(self, name: str, me: Replica) -> None:
        kind = self.kind(name)
        svc = self.services[name]
        mounts = self.mounts(name)
        if kind == "postgres":
            self._create_pg(name)
            me.proc = None
            return
        if kind == "mosquitto":
            argv = ["mosquitto", "-c", str(self._mosquitto_conf(name, me, mounts))]
        else:
            for container, host in mounts:
                if host.is_file() and host.suffix in (".yaml", ".yml", ".conf", ".json") and not container.startswith("/opt"):
                    copy = self.scratch / "config" / f"{name}-{me.index}" / host.name
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    copy.write_text(self.translate(host.read_text(), me, mounts))
                    copy.chmod(0o644)
                    mounts = [(c, copy if c == container else h) for c, h in mounts]
            command = svc.get("command")
            if command is None:
                raise ComposeError(f"service {name} has no command")
            argv = self._argv(command if isinstance(command, list) else shlex.split(command), me, mounts)
        me.log = self.logs / f"{me.hostname}.log"
        out = open(me.log, "ab")  # noqa: SIM115 - closed with the process
        me.proc = subprocess.Popen(self._as_user(name, me, argv), env=self.env(name, me, mounts), stdout=out,
                                   stderr=subprocess.STDOUT, cwd=self.scratch, start_new_session=True)
        out.close()

    def _mosquitto_conf(self, name: str, me: Replica, mounts: list[tuple[str, Path]]) -> Path:
        source = dict(mounts).get("/mosquitto/config")
        if source is None:
            raise ComposeError(f"{name}: /mosquitto/config is not mounted")
        text = (source / "mosquitto.conf").read_text()
        text = re.sub(r"(?m)^listener\s+(\d+)(\s+\S+)?", lambda m: f"listener {me.ports[int(m.group(1))]} 127.0.0.1", text)
        conf = self.scratch / "config" / f"{me.hostname}-mosquitto.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(self.translate(text, me, mounts))
        conf.chmod(0o644)
        return conf

    def _create_pg(self, name: str) -> None:
        env = self.services[name]["environment"]
        user, password, db = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
        self.pg_names = {user: f"{user}_{self.suffix}", db: f"{db}_{self.suffix}"}
        conn = psycopg2.connect(PG_SERVER)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE ROLE "{self.pg_names[user]}" LOGIN PASSWORD %s', (password,))
            cur.execute(f'CREATE DATABASE "{self.pg_names[db]}" OWNER "{self.pg_names[user]}"')
        conn.close()
        self.pg_created.append((self.pg_names[user], self.pg_names[db]))

    def database_url(self) -> str:
        """Superuser URL of the stack's database (for the test's own queries)."""
        (_, db), = self.pg_created
        return PG_SERVER.rsplit("/", 1)[0] + f"/{db}"

    def healthcheck(self, name: str, me: Replica) -> bool:
        """Run the service's healthcheck once (True without one)."""
        check = self.services[name].get("healthcheck")
        if not check or check.get("disable"):
            return True
        test = check["test"]
        mounts = self.mounts(name)
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if test[0] == "NONE":
            return True
        argv = ["sh", "-c", self.translate(test[1], me, mounts)] if test[0] == "CMD-SHELL" else self._argv(test[1:], me, mounts)
        if argv and argv[0] == "python":
            argv[0] = sys.executable
        try:
            done = subprocess.run(self._as_user(name, me, argv), env=self.env(name, me, mounts),
                                  capture_output=True, timeout=_seconds(check.get("timeout", "30s")) + 5)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def _monitor(self, name: str, me: Replica) -> None:
        """Start ``me`` once its dependencies allow it, then watch its health or its exit."""
        try:
            for dep, cond in _depends(self.services[name]).items():
                if dep not in self.services:
                    if cond.get("required", True):
                        raise ComposeError(f"{name} depends on {dep}, which is not enabled")
                    continue
                for r in self.replicas[dep]:
                    if cond["condition"] == "service_healthy":
                        _wait(r.healthy, 240, f"{dep} healthy", r, self._stopping)
                    elif cond["condition"] == "service_completed_successfully":
                        _wait(r.done, 240, f"{dep} completed", r, self._stopping)
                        if r.error:
                            raise ComposeError(f"{dep} failed: {r.error}")
            if self._stopping.is_set():
                return
            self._start(name, me)
            check = self.services[name].get("healthcheck")
            interval = min(_seconds(check.get("interval", "30s")), 2.0) if check else 1.0
            while not self._stopping.is_set():
                if me.proc is not None and me.proc.poll() is not None:
                    rc = me.proc.returncode
                    if rc != 0 or self.services[name].get("restart") != "no":
                        me.error = f"exited with {rc}"
                    me.done.set()
                    return
                if not me.healthy.is_set() and self.healthcheck(name, me):
                    me.healthy.set()
                    if me.proc is None:  # an external server (PostgreSQL) has nothing more to watch
                        return
                time.sleep(interval)
        except Exception as exc:
            me.error = f"{type(exc).__name__}: {exc}"
            me.done.set()

    def up(self) -> None:
        """Start every enabled service (its replicas) as its dependencies allow; return at once."""
        for name, reps in self.replicas.items():
            for r in reps:
                t = threading.Thread(target=self._monitor, args=(name, r), name=f"compose-{r.hostname}", daemon=True)
                t.start()
                self._threads.append(t)

    def wait(self, name: str, what: str = "healthy", timeout: float = 180) -> list[Replica]:
        """Wait until every replica of ``name`` is healthy (or ``done`` successfully)."""
        for r in self.replicas[name]:
            _wait(r.healthy if what == "healthy" else r.done, timeout, f"{name} {what}", r)
            if r.error:
                raise AssertionError(f"{r.hostname}: {r.error}\n{r.log_tail()}")
        return self.replicas[name]

    def run(self, name: str, argv: list[str], volumes: Mapping[str, Path] | None = None,
            user: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm [-u USER] [-v HOST:CONTAINER] NAME ARGV`` (no new dependencies)."""
        me = Replica(name, 99, f"{name}-run-{uuid.uuid4().hex[:6]}")
        me.ports = {p: free_port() for p in self._container_ports(self.services[name])}
        mounts = self.mounts(name, volumes)
        full = self._as_user(name, me, self._argv(argv, me, mounts), user)
        return subprocess.run(full, env=self.env(name, me, mounts), capture_output=True, text=True,
                              timeout=timeout, cwd=self.scratch)

    def kill(self, name: str, sig: int) -> None:
        """``docker compose kill -s SIG NAME``."""
        for r in self.replicas[name]:
            if r.proc is not None:
                os.killpg(r.proc.pid, sig)

    def failures(self) -> dict[str, str]:
        """Replicas that died (or never started), with the tail of their log."""
        return {r.hostname: f"{r.error}\n{r.log_tail()}" for reps in self.replicas.values() for r in reps if r.error}

    def down(self) -> None:
        self._stopping.set()
        procs = [r.proc for reps in self.replicas.values() for r in reps if r.proc is not None]
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if self.pg_created:
            conn = psycopg2.connect(PG_SERVER)
            conn.autocommit = True
            with conn.cursor() as cur:
                for role, db in self.pg_created:
                    cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                    cur.execute(f'DROP ROLE IF EXISTS "{role}"')
            conn.close()
        shutil.rmtree(self.volumes, ignore_errors=True)


def _depends(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on", {})
    if isinstance(deps, list):
        return {d: {"condition": "service_started"} for d in deps}
    return deps  # type: ignore[no-any-return]


def _seconds(value: object) -> float:
    text = str(value)
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, found = 0.0, False
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text):
        total += float(number) * units[unit]
        found = True
    return total if found else float(text)


def _wait(event: threading.Event, timeout: float, what: str, r: Replica, stop: threading.Event | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not event.wait(0.2):
        if r.error:
            raise ComposeError(f"{what}: {r.hostname} {r.error}\n{r.log_tail()}")
        if stop is not None and stop.is_set():
            return
        if time.monotonic() > deadline:
            raise ComposeError(f"timed out waiting for {what}\n{r.log_tail()}")
