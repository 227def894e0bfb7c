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
subscriptions, no persistent sessions).
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

__all__ = ["AmqttBroker", "MosquittoBroker", "free_port", "mosquitto_binary", "mosquitto_config"]

log = logging.getLogger(__name__)

#: Queue limits of every broker config we ship (embedded, compose, tests).
QUEUE_LIMITS = {
    "max_queued_messages": 5_000_000,
    "max_queued_bytes": 0,
    "max_inflight_messages": 0,
    "max_inflight_bytes": 0,
}


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


def mosquitto_config(
    port: int,
    data_dir: Path,
    *,
    password_file: Path | None = None,
    acl_file: Path | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    queue_limits: bool = True,
) -> str:
    """Text of a Mosquitto 2 config: loopback only, persistence on, queue limits raised.

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
    """
    lines = [
        f"listener {port} 127.0.0.1",
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
    if queue_limits:
        lines += [f"{k} {v}" for k, v in QUEUE_LIMITS.items()]
    if password_file is not None:
        lines += ["allow_anonymous false", f"password_file {password_file}"]
    else:
        lines.append("allow_anonymous true")
    if acl_file is not None:
        lines.append(f"acl_file {acl_file}")
    if tls is not None:
        ca, cert, key = tls
        lines += [f"cafile {ca}", f"certfile {cert}", f"keyfile {key}", "tls_version tlsv1.2"]
    return "\n".join(lines) + "\n"


class MosquittoBroker:
    """A Mosquitto child process with a config written under ``directory``.

    The port is kept in ``directory/port`` and reused on the next start, so persistent
    sessions survive a restart of the platform.
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
    ) -> None:
        self.directory = Path(directory)
        self.binary = mosquitto_binary(binary)
        if self.binary is None:
            raise FileNotFoundError("no mosquitto binary (install the 'mosquitto' package or set ITS_MOSQUITTO_BIN)")
        self.directory.mkdir(parents=True, exist_ok=True)
        port_file = self.directory / "port"
        if port is None and port_file.exists():
            remembered = int(port_file.read_text())
            port = remembered if _port_free(remembered) else None
        self.port = port or free_port()
        port_file.write_text(str(self.port))
        self.tls = tls is not None
        self.config_path = self.directory / "mosquitto.conf"
        self.config_path.write_text(
            mosquitto_config(
                self.port, self.directory, password_file=password_file, acl_file=acl_file,
                tls=tls, queue_limits=queue_limits,
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

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

    def kill(self) -> None:
        """SIGKILL the broker (fault injection)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None

    def reload(self) -> None:
        """SIGHUP: re-read password file and ACL."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGHUP)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


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
