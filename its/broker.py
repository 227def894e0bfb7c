"""Embedded MQTT broker: a real Mosquitto child process with the platform's config.

Mosquitto's default ``max_queued_messages`` (1,000 per client) silently drops QoS 1
messages for a subscriber that falls behind; every config written here raises it.

Persistence: Mosquitto 2.0 keeps sessions, subscriptions and queued messages in memory and
writes the whole state to its file at each autosave. ``autosave_interval 1`` is time based
and, as Mosquitto compares whole seconds strictly, saves every 2 s: a SIGKILL loses what the
broker acknowledged since and had not yet handed to a subscriber (measured: up to ~1.8 s of
traffic when the collector is away; none while it is connected and keeping up). Saving on
every change (``autosave_on_changes true``) rewrites the whole file per message (measured
10-40x slower publishing, worse as the backlog grows), so it is not used. A graceful stop
(SIGTERM) saves everything.
amqtt is a last resort when no Mosquitto binary exists (MQTT 3.1.1 only, no shared
subscriptions, no persistent sessions, no authentication).

Authentication (``auth_dir``, as the embedded broker of :mod:`its.runtime` runs): anonymous
clients are refused and two listeners are served (``per_listener_settings``), each with its
own password file and ACL from :mod:`its.device_registry`:

- the platform listener (the port of ``ITS_MQTT_URL``): the platform's own accounts only
  (collector, API, simulators, camera workers), whose passwords are in the data dir;
- the device listener: registered devices only, with ``use_username_as_clientid``, so a
  device's client id is always its user name. Client ids are one namespace across
  listeners: a device can neither resume nor wipe the collector's persistent session, and
  device ids may not start with the platform's ``its-`` client-id prefix.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = ["MESSAGE_SIZE_LIMIT", "QUEUE_LIMITS", "AmqttBroker", "DeviceListener", "MosquittoBroker", "free_port",
           "mosquitto_binary", "mosquitto_config", "reload_running_broker", "url_with_credentials"]

log = logging.getLogger(__name__)

#: Queue limits of every broker config we ship (embedded, compose, tests), per client:
#: 5,000,000 messages (about 0.5 GB of ~100-byte telemetry) or 1 GiB of payload, whichever
#: comes first, so a publisher of large messages cannot make the broker hold more than that
#: for an absent subscriber. In-flight counts are left to the clients (MQTT v5 receive maximum).
QUEUE_LIMITS = {
    "max_queued_messages": 5_000_000,
    "max_queued_bytes": 1 << 30,
    "max_inflight_messages": 0,
    "max_inflight_bytes": 0,
}
#: Largest payload the broker accepts, bytes: room for camera snapshots (annotated JPEGs of up
#: to 4K frames) above the collector's 64 KiB telemetry limit (``ITS_MAX_PAYLOAD_BYTES``), so a
#: too-large telemetry message still reaches the collector and is dead-lettered with a reason.
#: Larger ones are discarded by the broker (a v5 publisher gets an error reason code).
MESSAGE_SIZE_LIMIT = 2 << 20


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mosquitto_binary(configured: str | None) -> str | None:
    """The Mosquitto binary to run: ``configured``, ``mosquitto`` on PATH or /usr/sbin."""
    if configured:
        return configured
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


class DeviceListener(NamedTuple):
    """A second listener for devices: its port, password file and ACL."""

    port: int
    password_file: Path
    acl_file: Path


def url_with_credentials(url: str, user: str, password: str) -> str:
    """``url`` with ``user:password@`` (percent-encoded) in place of any credentials it had."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def mosquitto_config(
    port: int,
    data_dir: Path,
    *,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    queue_limits: bool = True,
    devices: DeviceListener | None = None,
) -> str:
    """Text of a Mosquitto 2 config: loopback only, persistence on, message size bounded, queue
    limits raised (messages) and bounded (bytes).

    Parameters
    ----------
    port : int
        Listener port on 127.0.0.1.
    data_dir : Path
        Directory for the persistence file.
    password_file, acl_file : Path, optional
        When given, anonymous clients are refused and the ACL applies.
    tls : (ca, cert, key), optional
        Serve TLS on this listener.
    queue_limits : bool
        False writes Mosquitto's defaults (used only to demonstrate the loss they cause).
    devices : DeviceListener, optional
        Serve devices on a second listener with their own password file and ACL and
        ``use_username_as_clientid`` (needs ``password_file``: both listeners authenticate).
    """
    if devices is not None and password_file is None:
        raise ValueError("a device listener needs the platform listener's password_file")
    lines = ["per_listener_settings true"] if devices is not None else []
    lines += [
        "persistence true",
        f"persistence_location {data_dir}/",
        "autosave_interval 1",
        "persistent_client_expiration 7d",
        "set_tcp_nodelay true",
        "max_keepalive 120",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # a child process of ours keeps our identity (Mosquitto would otherwise switch to
        # the 'mosquitto' user, which cannot read a private data dir)
        lines.append("user root")
    lines.append(f"message_size_limit {MESSAGE_SIZE_LIMIT}")
    if queue_limits:
        lines += [f"{k} {v}" for k, v in QUEUE_LIMITS.items()]

    def listener(at: int, passwd: Path | None, acl: Path | None) -> list[str]:
        out = [f"listener {at} 127.0.0.1"]
        out += ["allow_anonymous false", f"password_file {passwd}"] if passwd else ["allow_anonymous true"]
        out += [f"acl_file {acl}"] if acl else []
        if tls is not None:
            ca, cert, key = tls
            out += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2"]
        return out

    lines += listener(port, password_file, acl_file)
    if devices is not None:
        lines += [*listener(devices.port, devices.password_file, devices.acl_file), "use_username_as_clientid true"]
    return "\n".join(lines) + "\n"


class MosquittoBroker:
    """A Mosquitto child process with a config written under ``directory``.

    The port is kept in ``directory/port`` (the device listener's in ``directory/device-port``)
    and reused on the next start, so persistent sessions survive a restart of the platform.

    Parameters
    ----------
    auth_dir : Path, optional
        Authenticate: the platform listener uses ``passwd-platform``/``acl-platform`` written
        here now (:func:`its.device_registry.write_platform_auth`), a device listener uses
        ``passwd-devices``/``acl-devices`` (written by ``its devices add``). Overrides
        ``password_file`` and ``acl_file``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        binary: str | None = None,
        port: int | None = None,
        queue_limits: bool = True,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        auth_dir: Path | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.binary = mosquitto_binary(binary)
        if self.binary is None:
            raise FileNotFoundError("no mosquitto binary (install the 'mosquitto' package or set ITS_MOSQUITTO_BIN)")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _remembered_port(self.directory / "port", port)
        self.tls = tls is not None
        self.auth_dir = auth_dir
        self.device_port: int | None = None
        devices = None
        if auth_dir is not None:
            from its.device_registry import write_platform_auth

            auth = write_platform_auth(Path(auth_dir))
            password_file, acl_file = auth.platform_passwd, auth.platform_acl
            self.device_port = _remembered_port(self.directory / "device-port", None, avoid=self.port)
            devices = DeviceListener(self.device_port, auth.device_passwd, auth.device_acl)
        self.config_path = self.directory / "mosquitto.conf"
        self.config_path.write_text(
            mosquitto_config(
                self.port, self.directory, password_file=password_file, acl_file=acl_file,
                tls=tls, queue_limits=queue_limits, devices=devices,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The platform listener's URL, without credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    @property
    def device_url(self) -> str | None:
        """The device listener's URL (None without ``auth_dir``)."""
        if self.device_port is None:
            return None
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.device_port}"

    def account_url(self, account: str) -> str:
        """The platform listener's URL with the credentials of a platform account."""
        if self.auth_dir is None:
            return self.url
        from its.device_registry import platform_passwords

        return url_with_credentials(self.url, account, platform_passwords(Path(self.auth_dir))[account])

    def start(self, timeout_s: float = 10.0) -> None:
        """Start the broker and wait until it accepts TCP connections."""
        assert self.binary is not None
        log_file = open(self.directory / "mosquitto.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {(self.directory / 'mosquitto.log').read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    (self.directory / "pid").write_text(str(self.process.pid))
                    return
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"mosquitto did not listen on {self.port}")

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM saves the persistence file)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        (self.directory / "pid").unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the broker (fault injection)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None
        (self.directory / "pid").unlink(missing_ok=True)

    def reload(self) -> None:
        """SIGHUP: re-read password file and ACL."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def _remembered_port(path: Path, port: int | None, avoid: int | None = None) -> int:
    """``port``, else the one remembered in ``path`` when still free, else a new free one."""
    if port is None and path.exists():
        remembered = int(path.read_text())
        port = remembered if remembered != avoid and _port_free(remembered) else None
    while port is None or port == avoid:
        port = free_port()
    path.write_text(str(port))
    return port


def reload_running_broker(directory: Path) -> bool:
    """SIGHUP the embedded Mosquitto running from ``directory`` (re-reads passwords and ACLs).

    Returns False when none runs there (no pid file, or the pid is not that Mosquitto).
    """
    try:
        pid = int((Path(directory) / "pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    if b"mosquitto" not in cmdline or str(Path(directory) / "mosquitto.conf").encode() not in cmdline:
        return False
    os.kill(pid, signal.SIGHUP)
    return True


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class AmqttBroker:
    """Last-resort broker: amqtt in a child process (MQTT 3.1.1, no persistence)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.tls = False

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> None:
        log_file = open(self.directory / "amqtt.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen([sys.executable, "-m", "its._amqtt_main", str(self.port)], stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("amqtt broker exited")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("amqtt did not listen")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    kill = stop

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
