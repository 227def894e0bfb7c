"""Platform-wide settings, read from ``ITS_*`` environment variables.

Domain packages keep their own thresholds in ``<pkg>/config.py`` (prefix ``ITS_<PKG>_``);
this module holds what every process of the platform shares.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "SettingsError", "get_settings", "load_settings", "mqtt_endpoint"]


def _default_data_dir() -> Path:
    return Path.home() / ".local" / "share" / "its"


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the ``ITS_*`` variable."""


class Settings(BaseSettings):
    """Settings shared by every platform process.

    Every field maps to the environment variable ``ITS_<FIELD_NAME>``.
    """

    model_config = SettingsConfigDict(env_prefix="ITS_", extra="ignore", frozen=True)

    database_url: str | None = Field(
        None, description="PostgreSQL URL; unset starts the embedded PostgreSQL under the data dir."
    )
    database_read_url: str | None = Field(
        None, description="Read-replica URL; API reads go there when set."
    )
    mqtt_url: str | None = Field(
        None,
        description="Broker URL `mqtt://user:pass@host:port` (`mqtts://` for TLS); unset starts an embedded Mosquitto.",
    )
    mqtt_ca_file: Path | None = Field(None, description="CA certificate for `mqtts://` brokers.")
    mosquitto_bin: str | None = Field(
        None, description="Mosquitto binary for the embedded broker (default: `mosquitto` on PATH)."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where embedded servers, spools, snapshots and caches live.",
    )
    api_host: str = Field("127.0.0.1", description="Address the API binds to.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port the API binds to.")
    session_secret: SecretStr | None = Field(
        None,
        description="Secret signing dispatcher sessions and CSRF tokens; unset: generated once and kept in the data dir.",
    )
    session_ttl_s: int = Field(12 * 3600, gt=0, description="Dispatcher session lifetime, s.")
    cookie_secure: bool = Field(False, description="Mark the session cookie `Secure` (behind TLS).")
    public_rate_per_min: int = Field(
        1200, gt=0, description="Requests per minute per client IP on public routes."
    )
    app_key_quota_per_min: int = Field(
        12000, gt=0, description="Default requests per minute per app key."
    )
    login_attempts_per_min: int = Field(
        10, gt=0, description="Failed logins allowed per minute per user and per client IP."
    )
    max_payload_bytes: int = Field(
        64 * 1024, gt=0, description="Larger MQTT payloads are rejected, bytes."
    )
    collector_batch_size: int = Field(5000, gt=0, description="Rows per collector commit.")
    collector_batch_ms: int = Field(
        100, gt=0, description="Longest wait before a partial batch is committed, ms."
    )
    collector_inflight: int = Field(
        20000, gt=0, le=65535,
        description="Unacknowledged QoS 1 messages a collector holds (MQTT v5 receive maximum); bounds its memory.",
    )
    collector_client_id: str = Field(
        "its-collector", description="MQTT client id prefix of collectors (persistent session)."
    )
    collector_subscription: Literal["exclusive", "shared"] = Field(
        "exclusive",
        description="`exclusive`: one collector, a plain persistent subscription the broker restores "
        "after a restart; `shared`: `$share/its-collectors/` so several collectors split the load "
        "(Mosquitto 2.0 loses messages published between a broker restart and the re-subscribe).",
    )
    retention_days: int = Field(
        0, ge=0, description="Drop time-series data older than this many days (0 keeps all)."
    )
    basemap_tile_url: str | None = Field(
        None, description="Optional XYZ tile URL for the control-centre map (offline when unset)."
    )
    log_level: str = Field("INFO", description="Python logging level.")

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
                raise ValueError("scheme must be mqtt:// or mqtts://")
            if not parts.hostname:
                raise ValueError("missing host")
        return value

    @field_validator("database_url", "database_read_url")
    @classmethod
    def _check_db_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    def secret(self) -> str:
        """Return the session secret, creating and keeping one in the data dir if unset."""
        if self.session_secret is not None:
            return self.session_secret.get_secret_value()
        path = self.data_dir / "session_secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


def mqtt_endpoint(url: str) -> tuple[str, int, bool, str | None, str | None]:
    """Split an MQTT URL into ``(host, port, tls, username, password)``."""
    parts = urlsplit(url)
    tls = parts.scheme in ("mqtts", "ssl")
    port = parts.port or (8883 if tls else 1883)
    return parts.hostname or "127.0.0.1", port, tls, parts.username, parts.password


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment; errors name the ``ITS_*`` variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"ITS_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached)."""
    return load_settings()
