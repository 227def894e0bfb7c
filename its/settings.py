"""Platform-wide settings, read from ``ITS_*`` environment variables.

Domain packages keep their own thresholds in ``<pkg>/config.py`` (prefix ``ITS_<PKG>_``);
this module holds what every process of the platform shares.
"""

from __future__ import annotations

import secrets
from functools import lru_cache
from ipaddress import ip_network
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
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port of this process's own Prometheus `/metrics` (collectors, "
        "camera workers; `its serve` answers `/metrics` on the API port). Unset: none.")
    plugins: str = Field(
        "", description="Extra domain packages, comma-separated module paths each exporting a `DOMAIN` "
        "descriptor (`its.domain.Domain`), registered after the built-in ones.")
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
        10, gt=0, description="Failed logins allowed per minute per client IP, whatever the user names."
    )
    login_free_failures: int = Field(
        5, ge=0, description="Failed logins of one user from one client IP before back-off starts; "
        "each further failure doubles the wait (1 s, 2 s, 4 s...)."
    )
    login_backoff_max_s: float = Field(
        900.0, gt=0, description="Longest login back-off of one user from one client IP, s."
    )
    unknown_key_rate_per_min: int = Field(
        30, gt=0, description="Lookups of unknown or revoked API keys allowed per minute per client IP "
        "(then 429 without a database query)."
    )
    trusted_proxies: str = Field(
        "", description="Comma-separated IPs/CIDRs of reverse proxies whose `X-Forwarded-For` names the "
        "client; from anyone else the header is ignored."
    )
    cors_origins: str = Field(
        "", description="Comma-separated origins (`https://app.example.org`) whose browser apps may call the "
        "API (CORS, public and app routes and the event streams included; `*` allows any origin); empty: CORS off."
    )
    max_body_bytes: int = Field(
        1024 * 1024, gt=0, description="Largest request body, bytes; larger is 413 before it is read."
    )
    http_max_headers: int = Field(100, gt=0, description="Most request header fields; more is 431.")
    http_max_header_bytes: int = Field(
        32 * 1024, gt=0, description="Largest request line plus headers, bytes; larger is 431."
    )
    http_header_timeout_s: float = Field(
        10.0, gt=0, description="A connection must send a complete request head within this time, s "
        "(silent and slow clients are disconnected)."
    )
    http_body_timeout_s: float = Field(
        30.0, gt=0, description="Longest wait for the next chunk of a request body, s (then 408)."
    )
    http_keepalive_s: int = Field(5, gt=0, description="Idle keep-alive connections are closed after this, s.")
    http_max_connections: int = Field(
        1000, gt=0, description="Concurrent connections and requests the API serves; beyond, 503."
    )
    max_streams: int = Field(100, gt=0, description="Concurrent server-sent-event streams in all; beyond, 503.")
    max_streams_per_client: int = Field(
        4, gt=0, description="Concurrent server-sent-event streams per client IP; beyond, 503."
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
    ingest_max_future_s: float = Field(
        60.0, ge=0,
        description="Collector: a message whose time is more than this ahead of the clock is dead-lettered "
        "(device clock skew allowance), s.",
    )
    ingest_max_age_s: float = Field(
        7 * 86400.0, gt=0,
        description="Collector: a message whose time is more than this before its receipt is dead-lettered, s "
        "(older data goes through an import command, e.g. the parking history backfill).",
    )
    ingest_max_future_s_by_feed: dict[str, float] = Field(
        {},
        description="Per-feed override of `ITS_INGEST_MAX_FUTURE_S`: JSON object feed -> s, "
        "e.g. `{\"vehicle_positions\": 300}`.",
    )
    ingest_max_age_s_by_feed: dict[str, float] = Field(
        {},
        description="Per-feed override of `ITS_INGEST_MAX_AGE_S`: JSON object feed -> s, "
        "e.g. `{\"parking_counts\": 2592000}`.",
    )
    rejected_payload_max_bytes: int = Field(
        4096, ge=0,
        description="Dead letters keep the first this many bytes of the payload (with its length and SHA-256), bytes.",
    )
    rejected_retention_days: int = Field(
        30, ge=0, description="Drop dead letters (`rejected_messages`) older than this many days (0 keeps all)."
    )
    retention_days: int = Field(
        0, ge=0, description="Drop time-series data older than this many days (0 keeps all)."
    )
    basemap_tile_url: str | None = Field(
        None, description="Optional XYZ tile URL for the control-centre map (offline when unset)."
    )
    log_level: str = Field("INFO", description="Python logging level.")

    @field_validator("ingest_max_future_s_by_feed", "ingest_max_age_s_by_feed")
    @classmethod
    def _check_by_feed(cls, value: dict[str, float]) -> dict[str, float]:
        for feed, seconds in value.items():
            if not seconds >= 0:  # also refuses NaN
                raise ValueError(f"feed {feed!r}: seconds must be >= 0")
        return value

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

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        for item in filter(None, (v.strip() for v in value.split(","))):
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR network") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, value: str) -> str:
        for item in filter(None, (v.strip() for v in value.split(","))):
            parts = urlsplit(item)
            try:
                parts.port  # noqa: B018  (raises on a bad port)
            except ValueError:
                raise ValueError(f"{item!r}: bad port") from None
            if item != "*" and (parts.scheme not in ("http", "https") or not parts.hostname
                                or parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc):
                raise ValueError(f"{item!r} is not an origin (scheme://host[:port], or *)")
        return value

    def cors_origin_list(self) -> list[str]:
        """``cors_origins`` as a list, trailing slashes and blanks dropped (empty: CORS off)."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

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
