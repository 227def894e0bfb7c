"""MQTT credentials: the device registry (in the database) and the platform's own accounts,
written out as Mosquitto password files and ACLs.

Devices publish only under their own id; platform accounts get exactly the rights their
process needs (:func:`platform_accounts`). Passwords are stored in Mosquitto's own ``$7$``
format (PBKDF2-HMAC-SHA512), which is what the broker verifies; a device's clear password is
shown once, at creation; the platform accounts' clear passwords live in the data dir
(``broker-auth/platform-passwords``, mode 0600), readable only by the platform's own user.

Files written into the broker-auth directory:

- ``passwd``, ``acl``: every account (platform and devices), for a broker with one listener
  (docker compose, an external Mosquitto);
- ``passwd-platform``, ``acl-platform``: the platform accounts only;
- ``passwd-devices``, ``acl-devices``: the registry's active devices only. The embedded
  broker (:mod:`its.broker`) serves the platform and the devices on two listeners, each with
  its own pair, and forces a device's client id to its user name.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from its.db import Database
from its.devices import device_status_topic
from its.domain import registered
from its.ingest import STATE_FILTER, TELEMETRY_FILTER

__all__ = ["CORE_ACCOUNTS", "PUBLISHER_PREFIX", "RESERVED_PREFIX", "STATE_FILTER", "BrokerAuth", "PlatformAccount",
           "acl_text", "add_device", "device_kinds", "device_reads", "list_devices", "mosquitto_password_hash",
           "platform_accounts", "platform_acl_text", "platform_passwords", "platform_topics", "revoke_device",
           "write_broker_auth", "write_platform_auth"]

#: Device ids may not start with this: it is the prefix of the platform's MQTT client ids.
RESERVED_PREFIX = "its-"


@dataclass(frozen=True, slots=True)
class PlatformAccount:
    """A platform process's MQTT account.

    Attributes
    ----------
    name : str
        MQTT user name.
    reads, writes : tuple of str
        Topic filters it may subscribe to / publish on.
    publishes_for : str, optional
        A domain name: the account may publish what any device of that domain's kinds
        publishes (simulators, a camera worker running several cameras).
    platform_topics : bool
        The account may publish every topic a registered domain declares as the platform's
        (`platform_topics`: vehicle advice, parking sign texts...).
    """

    name: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    publishes_for: str | None = None
    platform_topics: bool = False


#: ``collector`` reads telemetry; ``platform`` (the API) reads it and writes derived state and
#: the topics the domains declare as the platform's.
CORE_ACCOUNTS = (PlatformAccount("collector", reads=(TELEMETRY_FILTER,)),
                 PlatformAccount("platform", reads=(TELEMETRY_FILTER,), writes=(STATE_FILTER,), platform_topics=True))
PUBLISHER_PREFIX = "publisher-"


def platform_accounts() -> tuple[PlatformAccount, ...]:
    """:data:`CORE_ACCOUNTS` and one ``publisher-<domain>`` per registered domain that has
    device kinds (its simulator or worker: ``publisher-telematics``, ``publisher-video``...)."""
    return CORE_ACCOUNTS + tuple(PlatformAccount(PUBLISHER_PREFIX + d.name, publishes_for=d.name)
                                 for d in registered() if d.device_kinds)


def platform_topics() -> tuple[str, ...]:
    """Filters of the topics the registered domains declare as published by the platform's API
    process (`its.domain.Topic.from_platform`): its ``platform`` account may write them."""
    return tuple(dict.fromkeys(t.filter for d in registered() for t in d.topics if t.from_platform))


def device_reads() -> dict[str, tuple[str, ...]]:
    """What each kind of device may read beyond the derived state (``{id}``: its own id)."""
    return {k.name: k.reads for d in registered() for k in d.device_kinds}


def device_kinds() -> dict[str, tuple[str, ...]]:
    """What each kind of device may publish, from the registered domains' descriptors.

    ``{id}`` is the device id (= its MQTT username); a parking space sensor's id is
    ``{site}.{space}`` (as the parking package names it).
    """
    return {k.name: k.publishes for d in registered() for k in d.device_kinds}


_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_ITERATIONS = 101


def mosquitto_password_hash(password: str, salt: bytes | None = None) -> str:
    """Mosquitto 2 ``$7$`` hash (as written by ``mosquitto_passwd``)."""
    salt = salt or os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS)
    return f"$7${_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _is_platform_name(name: str) -> bool:
    return name in {a.name for a in CORE_ACCOUNTS} or name.startswith((PUBLISHER_PREFIX, RESERVED_PREFIX))


def add_device(db: Database, device_id: str, kind: str) -> str:
    """Register (or re-key) a device; return its new password (shown once)."""
    kinds = device_kinds()
    if kind not in kinds:
        raise ValueError(f"kind must be one of {sorted(kinds)}")
    if not _ID.match(device_id) or _is_platform_name(device_id):
        raise ValueError("device id: 1-64 letters, digits, '_', '-', '.' (not a platform account name, "
                         f"not starting with {RESERVED_PREFIX!r} or {PUBLISHER_PREFIX!r})")
    if kind == "parking-sensor" and device_id.count(".") != 1:
        raise ValueError("a parking-sensor id is SITE.SPACE")
    password = secrets.token_urlsafe(18)
    db.execute(
        "INSERT INTO devices (device_id, kind, password_hash) VALUES (%s, %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind,"
        " password_hash = EXCLUDED.password_hash, revoked_at = NULL",
        (device_id, kind, mosquitto_password_hash(password)),
    )
    return password


def revoke_device(db: Database, device_id: str) -> bool:
    return db.execute("UPDATE devices SET revoked_at = now() WHERE device_id = %s AND revoked_at IS NULL",
                      (device_id,)) > 0


def list_devices(db: Database) -> list[tuple[str, str, bool]]:
    """(device_id, kind, active) for every registered device."""
    rows = db.fetchall("SELECT device_id, kind, revoked_at IS NULL FROM devices ORDER BY device_id")
    return [(r[0], r[1], bool(r[2])) for r in rows]


def _device_writes(device_id: str, kind: str, kinds: dict[str, tuple[str, ...]]) -> list[str]:
    return [*_own(kinds.get(kind, ()), device_id), device_status_topic(kind, device_id)]


def acl_text(devices: list[tuple[str, str]], *, platform: bool = True) -> str:
    """Mosquitto ACL: platform accounts as :func:`platform_acl_text`, devices write only their
    own topics (and their status, Last Will included) and read derived state."""
    kinds, reads = device_kinds(), device_reads()
    lines = [platform_acl_text()] if platform else ["# generated by `its devices`; do not edit", ""]
    for device_id, kind in devices:
        lines.append(f"user {device_id}")
        lines += [f"topic write {t}" for t in _device_writes(device_id, kind, kinds)]
        lines += [f"topic read {t}" for t in (STATE_FILTER, *_own(reads.get(kind, ()), device_id))]
        lines.append("")
    return "\n".join(lines)


def _own(patterns: tuple[str, ...], device_id: str) -> list[str]:
    """``patterns`` with the device's own id (and ``{site}``/``{space}``) filled."""
    site, _, space = device_id.partition(".")
    return [t.format(id=device_id, site=site, space=space or site) for t in patterns]


def platform_acl_text() -> str:
    """ACL of the platform accounts; a ``publisher-<domain>`` writes what any device of that
    domain's kinds may write (``+`` for the device id)."""
    by_domain = {d.name: d.device_kinds for d in registered()}
    lines = ["# generated by the platform; do not edit", ""]
    for account in platform_accounts():
        lines.append(f"user {account.name}")
        lines += [f"topic read {t}" for t in account.reads]
        writes = list(account.writes)
        if account.platform_topics:
            writes += platform_topics()
        for kind in by_domain.get(account.publishes_for or "", ()):
            writes += [t.format(id="+", site="+", space="+") for t in kind.publishes]
            writes.append(device_status_topic(kind.name, "+"))
        lines += [f"topic write {t}" for t in dict.fromkeys(writes)]
        lines.append("")
    return "\n".join(lines)


def platform_passwords(directory: Path) -> dict[str, str]:
    """Clear passwords of the platform accounts, kept in ``directory/platform-passwords``
    (0600); accounts missing from the file are added with new random passwords."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "platform-passwords"
    known: dict[str, str] = {}
    if path.exists():
        known = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    missing = [a.name for a in platform_accounts() if a.name not in known]
    if missing or not path.exists():
        known.update({name: secrets.token_urlsafe(18) for name in missing})
        _write_private(path, "".join(f"{u}={p}\n" for u, p in known.items()))
    return known


@dataclass(frozen=True, slots=True)
class BrokerAuth:
    """Paths of the files in a broker-auth directory (see the module docstring)."""

    directory: Path

    @property
    def passwd(self) -> Path:
        return self.directory / "passwd"

    @property
    def acl(self) -> Path:
        return self.directory / "acl"

    @property
    def platform_passwd(self) -> Path:
        return self.directory / "passwd-platform"

    @property
    def platform_acl(self) -> Path:
        return self.directory / "acl-platform"

    @property
    def device_passwd(self) -> Path:
        return self.directory / "passwd-devices"

    @property
    def device_acl(self) -> Path:
        return self.directory / "acl-devices"


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def _platform_entries(passwords: dict[str, str]) -> list[str]:
    names = {a.name for a in platform_accounts()}
    return [f"{user}:{mosquitto_password_hash(pw)}" for user, pw in passwords.items() if user in names]


def write_platform_auth(directory: Path) -> BrokerAuth:
    """Write ``passwd-platform`` and ``acl-platform`` (no database needed); create empty device
    files when none exist yet, so a broker can start before any device is registered."""
    auth = BrokerAuth(directory)
    entries = _platform_entries(platform_passwords(directory))
    _write_private(auth.platform_passwd, "\n".join(entries) + "\n")
    _write_private(auth.platform_acl, platform_acl_text())
    for path, text in ((auth.device_passwd, ""), (auth.device_acl, "# no devices registered yet\n")):
        if not path.exists():
            _write_private(path, text)
    return auth


def write_broker_auth(db: Database, directory: Path,
                      platform_passwords_: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Write every password file and ACL from the registry (revoked devices left out).

    Parameters
    ----------
    platform_passwords_ : dict, optional
        Clear passwords of the platform accounts; default: those kept in ``directory``.

    Returns
    -------
    (passwd, acl) : the files holding every account, for a one-listener broker.
    """
    directory.mkdir(parents=True, exist_ok=True)
    auth = write_platform_auth(directory)
    passwords = platform_passwords_ if platform_passwords_ is not None else platform_passwords(directory)
    active = [(d, k) for d, k, ok in list_devices(db) if ok]
    hashes = dict(db.fetchall("SELECT device_id, password_hash FROM devices WHERE revoked_at IS NULL"))
    devices = [f"{d}:{hashes[d]}" for d, _ in active]
    platform = _platform_entries(passwords)
    _write_private(auth.device_passwd, "".join(f"{e}\n" for e in devices))
    _write_private(auth.device_acl, acl_text(active, platform=False))
    _write_private(auth.passwd, "\n".join(platform + devices) + "\n")
    _write_private(auth.acl, acl_text(active))
    if platform_passwords_ is not None:  # the caller's passwords win (tests, an external broker)
        _write_private(auth.platform_passwd, "\n".join(platform) + "\n")
    return auth.passwd, auth.acl
