"""Authentication and audiences: app keys, dispatcher sessions, rate limits.

Each route declares its audience with one dependency: :func:`public`, :func:`app_key`,
:func:`dispatcher` or :func:`admin` (each carries an ``audience`` attribute so a test can
walk the route table and prove nothing is left open).

- App keys look like ``its_<key_id>_<secret>``; only a SHA-256 of the key is stored (keys are
  random 256-bit secrets, so a slow hash adds nothing). Revocation is seen by every process
  within ``KEY_CACHE_S`` seconds and at once by the process that revoked it.
- Dispatcher passwords are hashed with Argon2id (argon2-cffi); sessions are server-side
  rows whose token travels in an HttpOnly, SameSite=Strict cookie (Secure behind TLS) or
  an ``Authorization: Bearer`` header; state-changing control routes need the session's
  CSRF token in ``X-CSRF-Token``.
- Rate limits are token buckets per client IP (public) or per key (its quota); a refusal is
  429 with ``Retry-After``. Lookups of unknown API keys are limited per client IP, so random
  keys cannot make every request cost a database query.
- Failed logins back off per (user, client IP): after ``ITS_LOGIN_FREE_FAILURES`` each further
  failure doubles the wait, so a guesser elsewhere never locks the real dispatcher out; each
  client IP also has a budget of failures per minute across user names. An unknown user name
  costs the same Argon2 verification as a known one (a dummy hash), so timing does not tell
  which names exist.
- The client IP is the TCP peer; ``X-Forwarded-For`` is honoured only when the peer is one of
  ``ITS_TRUSTED_PROXIES`` (the right-most address not itself a trusted proxy is the client).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from its.db import Database
from its.errors import API_KEY_CHALLENGE, SESSION_CHALLENGE, ApiError
from its.settings import Settings

__all__ = [
    "AUDIENCES",
    "SECURITY_SCHEMES",
    "SESSION_COOKIE",
    "Authenticator",
    "LoginThrottle",
    "Principal",
    "RateLimiter",
    "admin",
    "app_key",
    "audience_security",
    "client_address",
    "client_ip",
    "create_api_key",
    "create_user",
    "dispatcher",
    "hash_password",
    "list_api_keys",
    "parse_networks",
    "public",
    "revoke_api_key",
    "verify_password",
]

SESSION_COOKIE = "its_session"
_KEY_CHALLENGE = {"WWW-Authenticate": API_KEY_CHALLENGE}
KEY_CACHE_S = 1.0
AUDIENCES = ("public", "app", "dispatcher", "admin")
ROLES = ("dispatcher", "admin")
_hasher = PasswordHasher()

#: The credentials of the audiences as OpenAPI security schemes (``components.securitySchemes``).
SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "App key `its_<key_id>_<secret>` (`its keys create NAME`). Required on app routes; "
                              "optional on public routes, where it replaces the per-IP rate limit by the key's quota."},
    "SessionCookie": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE,
                      "description": "Dispatcher session set by `POST /v1/auth/login` (HttpOnly, SameSite=Strict)."},
    "SessionBearer": {"type": "http", "scheme": "bearer",
                      "description": "The same session token (`token` of the login answer) as `Authorization: Bearer`."},
    "CsrfToken": {"type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                  "description": "The session's `csrf_token` (login answer, `/v1/auth/me`); required on "
                                 "state-changing dispatcher routes together with the session."},
}


def audience_security(audience: str | None, method: str) -> list[dict[str, list[str]]] | None:
    """OpenAPI security requirements of a route of ``audience`` answering ``method``
    (None: the route names no audience, e.g. the ops probes)."""
    if audience == "public":
        return [{}, {"ApiKey": []}]
    if audience == "app":
        return [{"ApiKey": []}]
    if audience in ("dispatcher", "admin"):
        if method.upper() in ("GET", "HEAD", "OPTIONS"):
            return [{"SessionCookie": []}, {"SessionBearer": []}]
        return [{"SessionCookie": [], "CsrfToken": []}, {"SessionBearer": [], "CsrfToken": []}]
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """An Argon2 hash nobody knows the password of: verified for unknown user names."""
    return hash_password(secrets.token_urlsafe(32))


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- admin ops

def create_user(db: Database, username: str, password: str, role: str = "dispatcher") -> None:
    """Create or replace a dispatcher/admin user."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    if not username or len(username) > 64 or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError("username: 1-64 letters, digits, '-', '_' or '.'")
    if len(password) < 8:
        raise ValueError("password: at least 8 characters")
    db.execute(
        "INSERT INTO users (username, password_hash, role) VALUES (%s, %s, %s)"
        " ON CONFLICT (username) DO UPDATE SET password_hash = EXCLUDED.password_hash, role = EXCLUDED.role",
        (username, hash_password(password), role),
    )


def create_api_key(db: Database, name: str, quota_per_min: int) -> str:
    """Create an app key; return the full key (shown once, only its hash is kept)."""
    key_id = secrets.token_hex(4)
    key = f"its_{key_id}_{secrets.token_urlsafe(32)}"
    db.execute(
        "INSERT INTO api_keys (key_id, name, key_hash, quota_per_min) VALUES (%s, %s, %s, %s)",
        (key_id, name, _sha(key), quota_per_min),
    )
    return key


def list_api_keys(db: Database) -> list[dict[str, Any]]:
    rows = db.fetchall("SELECT key_id, name, quota_per_min, created_at, revoked_at FROM api_keys ORDER BY created_at")
    return [dict(zip(("key_id", "name", "quota_per_min", "created_at", "revoked_at"), r, strict=True)) for r in rows]


def revoke_api_key(db: Database, key_id: str) -> bool:
    return db.execute("UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND revoked_at IS NULL", (key_id,)) > 0


# --------------------------------------------------------------------------- rate limits

class RateLimiter:
    """Token buckets keyed by client; ``rate_per_min`` tokens refill per minute, burst = rate/6."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def peek(self, key: str, rate_per_min: int, burst: float | None = None) -> float:
        """Like :meth:`check` without taking the token: 0 when one is available, else the wait (s)."""
        rate = rate_per_min / 60.0
        burst = burst if burst is not None else max(1.0, rate_per_min / 6.0)
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, time.monotonic()))
        tokens = min(burst, tokens + (time.monotonic() - last) * rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / rate

    def check(self, key: str, rate_per_min: int, burst: float | None = None) -> float:
        """Take one token; return 0 when allowed, else the seconds until one is available."""
        now = time.monotonic()
        rate = rate_per_min / 60.0
        burst = burst if burst is not None else max(1.0, rate_per_min / 6.0)
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > 200_000:
                self._buckets.clear()
            return (1.0 - tokens) / rate


class LoginThrottle:
    """Exponential back-off of failed logins per (user, client).

    The first ``free`` failures cost nothing; failure ``free + k`` (k = 1, 2, ...) blocks that
    user from that client for ``2**(k-1)`` s, at most ``max_s``. A success clears the record; a
    record idle for ``max_s`` is forgotten.

    Parameters
    ----------
    free : int
        Failures allowed before back-off starts.
    max_s : float
        Longest wait, s.
    clock : callable
        Monotonic time source, s (a test may pass its own).
    """

    def __init__(self, free: int, max_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.free, self.max_s, self.clock = free, max_s, clock
        self._records: dict[tuple[str, str], tuple[int, float, float]] = {}  # failures, blocked until, last
        self._lock = threading.Lock()

    def wait(self, user: str, client: str) -> float:
        """Seconds until ``user`` may try again from ``client`` (0: now)."""
        with self._lock:
            record = self._records.get((user, client))
        return 0.0 if record is None else max(0.0, record[1] - self.clock())

    def failed(self, user: str, client: str) -> float:
        """Record a failure; return the wait it imposes (s)."""
        now = self.clock()
        with self._lock:
            failures, _, last = self._records.get((user, client), (0, 0.0, now))
            if now - last > self.max_s:
                failures = 0
            failures += 1
            wait = min(self.max_s, 2.0 ** (failures - self.free - 1)) if failures > self.free else 0.0
            self._records[(user, client)] = (failures, now + wait, now)
            if len(self._records) > 100_000:
                self._records = {k: v for k, v in self._records.items() if now - v[2] <= self.max_s}
        return wait

    def succeeded(self, user: str, client: str) -> None:
        with self._lock:
            self._records.pop((user, client), None)


Network = IPv4Network | IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.1, 192.168.0.0/16"`` → networks (as ``ITS_TRUSTED_PROXIES`` is written)."""
    return tuple(ip_network(item.strip(), strict=False) for item in text.split(",") if item.strip())


def _within(host: str, networks: Sequence[Network]) -> bool:
    try:
        address = ip_address(host)
    except ValueError:
        return False
    return any(address in n for n in networks)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's IP: the TCP ``peer``, or, when the peer is a trusted proxy, the right-most
    address of ``X-Forwarded-For`` that is not itself a trusted proxy."""
    if not forwarded_for or not trusted or not _within(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",")][-32:]
    for hop in reversed(hops):
        if not _within(hop, trusted):
            try:
                return str(ip_address(hop))
            except ValueError:
                return peer  # garbage from the client side of the proxy: trust the proxy only
    return hops[0] if hops else peer


@dataclass(frozen=True)
class Principal:
    """Who is calling: an anonymous client, an app key or a dispatcher/admin user."""

    kind: str  # "anonymous" | "app" | "user"
    name: str
    role: str | None = None
    quota_per_min: int | None = None
    csrf_token: str | None = None
    session_hash: str | None = None


class Authenticator:
    """Per-process auth state: key and session caches and rate limiters."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.limiter = RateLimiter()
        self.login_limiter = RateLimiter()
        self.login_throttle = LoginThrottle(settings.login_free_failures, settings.login_backoff_max_s)
        self.bad_keys = RateLimiter()
        self.trusted_proxies = parse_networks(settings.trusted_proxies)
        _dummy_hash()  # computed now, not during the first login with an unknown name
        self._keys: dict[str, tuple[float, Principal | None]] = {}
        self._sessions: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    # keys
    def cached_key(self, key: str) -> tuple[bool, Principal | None]:
        """``(True, principal)`` when the key's lookup is cached and fresh, else ``(False, None)``."""
        hit = self._keys.get(_sha(key))
        if hit and time.monotonic() - hit[0] < KEY_CACHE_S:
            return True, hit[1]
        return False, None

    def principal_for_key(self, key: str) -> Principal | None:
        digest = _sha(key)
        now = time.monotonic()
        with self._lock:
            hit = self._keys.get(digest)
        if hit and now - hit[0] < KEY_CACHE_S:
            return hit[1]
        rows = self.db.fetchall(
            "SELECT key_id, quota_per_min FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL", (digest,)
        )
        principal = Principal("app", rows[0][0], quota_per_min=int(rows[0][1])) if rows else None
        with self._lock:
            if len(self._keys) > 50_000:
                self._keys.clear()
            self._keys[digest] = (now, principal)
        return principal

    def forget_keys(self) -> None:
        with self._lock:
            self._keys.clear()

    # sessions
    def login(self, username: str, password: str, client: str) -> tuple[str, Principal]:
        """Verify a password and open a session; return ``(token, principal)``.

        Raises
        ------
        ApiError
            429 while ``username`` backs off from ``client`` or ``client`` has spent its
            failures of the minute; 401 for a wrong password or an unknown user (after the
            same Argon2 work).
        """
        per_ip = self.settings.login_attempts_per_min
        wait = max(self.login_throttle.wait(username, client),
                   self.login_limiter.peek(f"ip:{client}", per_ip, burst=float(per_ip)))
        if wait:
            raise ApiError(429, "rate_limited", "too many failed logins; try again later",
                           {"Retry-After": str(int(wait) + 1)})
        rows = self.db.fetchall("SELECT password_hash, role FROM users WHERE username = %s AND NOT disabled", (username,))
        matches = verify_password(rows[0][0] if rows else _dummy_hash(), password)
        if not rows or not matches:
            self.login_throttle.failed(username, client)
            self.login_limiter.check(f"ip:{client}", per_ip, burst=float(per_ip))
            raise ApiError(401, "unauthorized", "wrong username or password", {"WWW-Authenticate": SESSION_CHALLENGE})
        self.login_throttle.succeeded(username, client)
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        expires = datetime.now(UTC) + timedelta(seconds=self.settings.session_ttl_s)
        self.db.execute(
            "INSERT INTO sessions (token_hash, username, role, csrf_token, expires_at) VALUES (%s, %s, %s, %s, %s)",
            (_sha(token), username, rows[0][1], csrf, expires),
        )
        return token, Principal("user", username, role=rows[0][1], csrf_token=csrf, session_hash=_sha(token))

    def principal_for_session(self, token: str) -> Principal | None:
        digest = _sha(token)
        now = time.monotonic()
        with self._lock:
            hit = self._sessions.get(digest)
        if hit and now - hit[0] < KEY_CACHE_S:
            return hit[1]
        rows = self.db.fetchall(
            "SELECT s.username, u.role, s.csrf_token FROM sessions s JOIN users u USING (username)"
            " WHERE s.token_hash = %s AND s.expires_at > now() AND NOT u.disabled",
            (digest,),
        )
        principal = Principal("user", rows[0][0], role=rows[0][1], csrf_token=rows[0][2], session_hash=digest) if rows else None
        with self._lock:
            if len(self._sessions) > 50_000:
                self._sessions.clear()
            self._sessions[digest] = (now, principal)
        return principal

    def logout(self, principal: Principal) -> None:
        if principal.session_hash:
            self.db.execute("DELETE FROM sessions WHERE token_hash = %s", (principal.session_hash,))
            with self._lock:
                self._sessions.pop(principal.session_hash, None)


# --------------------------------------------------------------------------- dependencies

def _auth(request: Request) -> Authenticator:
    auth = getattr(request.app.state, "auth", None)
    if auth is None:
        raise ApiError(503, "unavailable", "authentication not ready")
    return auth  # type: ignore[no-any-return]


def client_ip(request: Request) -> str:
    """The caller's IP (``X-Forwarded-For`` only from ``ITS_TRUSTED_PROXIES``)."""
    peer = request.client.host if request.client else "unknown"
    auth = getattr(request.app.state, "auth", None)
    trusted = auth.trusted_proxies if auth is not None else ()
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted)


_client_ip = client_ip


def _limit(auth: Authenticator, key: str, rate: int) -> None:
    wait = auth.limiter.check(key, rate)
    if wait:
        raise ApiError(429, "rate_limited", "rate limit exceeded", {"Retry-After": str(int(wait) + 1)})


def _key_principal(request: Request, auth: Authenticator) -> Principal | None:
    key = request.headers.get("x-api-key")
    if key is None:
        return None
    if len(key) > 200:
        raise ApiError(401, "unauthorized", "invalid API key", _KEY_CHALLENGE)
    cached, principal = auth.cached_key(key)
    if not cached:
        # each unknown key costs a query: a client sending them is limited before the query
        bucket, rate = f"badkey:{_client_ip(request)}", auth.settings.unknown_key_rate_per_min
        wait = auth.bad_keys.peek(bucket, rate)
        if wait:
            raise ApiError(429, "rate_limited", "too many invalid API keys", {"Retry-After": str(int(wait) + 1)})
        principal = auth.principal_for_key(key)
        if principal is None:
            auth.bad_keys.check(bucket, rate)
    if principal is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key", _KEY_CHALLENGE)
    return principal


def _session_principal(request: Request, auth: Authenticator) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
    if not token or len(token) > 200:
        return None
    return auth.principal_for_session(token)


async def public(request: Request) -> Principal:
    """Anyone; rate-limited per client IP, or per app key (its quota) when one is sent.

    ``async`` so public reads (the hot path) skip the threadpool: everything here is memory
    except the database lookup of a key not seen for ``KEY_CACHE_S``, which runs in a thread.
    """
    auth = _auth(request)
    key = request.headers.get("x-api-key")
    principal: Principal | None = None
    if key is not None:
        cached, principal = auth.cached_key(key) if len(key) <= 200 else (False, None)
        if not cached:
            principal = await run_in_threadpool(_key_principal, request, auth)
        elif principal is None:
            raise ApiError(401, "unauthorized", "invalid or revoked API key", _KEY_CHALLENGE)
    if principal is not None:
        _limit(auth, f"key:{principal.name}", principal.quota_per_min or auth.settings.app_key_quota_per_min)
        return principal
    _limit(auth, f"ip:{_client_ip(request)}", auth.settings.public_rate_per_min)
    return Principal("anonymous", _client_ip(request))


def app_key(request: Request) -> Principal:
    """Apps with a valid ``X-API-Key``; rate-limited by the key's quota."""
    auth = _auth(request)
    principal = _key_principal(request, auth)
    if principal is None:
        raise ApiError(401, "unauthorized", "X-API-Key header required", _KEY_CHALLENGE)
    _limit(auth, f"key:{principal.name}", principal.quota_per_min or auth.settings.app_key_quota_per_min)
    return principal


def _user(request: Request, roles: tuple[str, ...]) -> Principal:
    auth = _auth(request)
    principal = _session_principal(request, auth)
    if principal is None:
        raise ApiError(401, "unauthorized", "login required", {"WWW-Authenticate": SESSION_CHALLENGE})
    if principal.role not in roles:
        raise ApiError(403, "forbidden", f"requires role {' or '.join(roles)}")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        sent = request.headers.get("x-csrf-token", "")
        if not principal.csrf_token or not secrets.compare_digest(sent, principal.csrf_token):
            raise ApiError(403, "forbidden", "missing or wrong X-CSRF-Token")
    return principal


def dispatcher(request: Request) -> Principal:
    """Logged-in dispatchers and admins (CSRF token required on state changes)."""
    return _user(request, ("dispatcher", "admin"))


def admin(request: Request) -> Principal:
    """Logged-in admins only."""
    return _user(request, ("admin",))


_AUDIENCE_OF: tuple[tuple[Callable[..., Any], str], ...] = (
    (public, "public"), (app_key, "app"), (dispatcher, "dispatcher"), (admin, "admin"))
for _fn, _aud in _AUDIENCE_OF:
    _fn.audience = _aud  # type: ignore[attr-defined]

PublicUser = Annotated[Principal, Depends(public)]
DispatcherUser = Annotated[Principal, Depends(dispatcher)]
AdminUser = Annotated[Principal, Depends(admin)]
AppUser = Annotated[Principal, Depends(app_key)]
Audience = Callable[[Request], Principal | Awaitable[Principal]]
