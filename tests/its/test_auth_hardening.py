"""Login throttling, user-name timing, trusted proxies, unknown keys and the session token,
through the real app (parking service, control routes, request limits) with TestClient."""

from __future__ import annotations

import secrets
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from its.auth import SESSION_COOKIE, LoginThrottle, client_address, create_api_key, parse_networks

from .served import Served, served_app

LOGIN = "/v1/auth/login"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("data")) as s:
        yield s


def _login(client: TestClient, user: str, password: str) -> Any:
    return client.post(LOGIN, json={"username": user, "password": password})


def test_a_guesser_elsewhere_does_not_lock_the_dispatcher_out(served: Served) -> None:
    served.reset_auth(login_free_failures=3, login_attempts_per_min=1000)
    attacker, dispatcher = served.client("203.0.113.66"), served.client("10.1.2.3")
    codes = [_login(attacker, "disp", f"guess-{i}").status_code for i in range(15)]
    assert codes[:3] == [401, 401, 401] and 429 in codes
    refused = _login(attacker, "disp", "the-right-password")  # even the right one, from there
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    assert _login(dispatcher, "disp", "the-right-password").status_code == 200


def test_back_off_doubles_per_user_and_client() -> None:
    now = [0.0]
    throttle = LoginThrottle(free=2, max_s=60.0, clock=lambda: now[0])
    waits = [throttle.failed("disp", "1.2.3.4") for _ in range(10)]
    assert waits == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]
    assert throttle.wait("disp", "1.2.3.4") == 60 and throttle.wait("disp", "5.6.7.8") == 0
    assert throttle.wait("other", "1.2.3.4") == 0
    now[0] = 61.0
    assert throttle.wait("disp", "1.2.3.4") == 0
    now[0] = 200.0  # idle longer than max_s: forgotten
    assert throttle.failed("disp", "1.2.3.4") == 0
    throttle.succeeded("disp", "1.2.3.4")
    assert throttle.wait("disp", "1.2.3.4") == 0


def test_one_client_spraying_user_names_is_limited(served: Served) -> None:
    served.reset_auth(login_free_failures=100, login_attempts_per_min=6)
    sprayer = served.client("198.51.100.9")
    codes = [_login(sprayer, f"user{i}", "password").status_code for i in range(8)]
    assert codes[:6] == [401] * 6 and codes[6:] == [429, 429]
    assert _login(served.client("10.1.2.4"), "disp", "the-right-password").status_code == 200


def test_unknown_user_names_cost_as_much_as_known_ones(served: Served) -> None:
    served.reset_auth(login_free_failures=1000, login_attempts_per_min=100_000)
    client = served.client("10.9.9.9")

    def median_s(user: str) -> float:
        samples = []
        for i in range(5):
            t0 = time.perf_counter()
            assert _login(client, user, f"wrong-password-{i}").status_code == 401
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples)

    median_s("nobody-here")  # warm up
    known, unknown = median_s("disp"), median_s(f"nobody-{secrets.token_hex(4)}")
    assert unknown >= 0.5 * known, (known, unknown)


def test_forwarded_for_is_honoured_only_from_trusted_proxies(served: Served) -> None:
    # untrusted peer: a made-up X-Forwarded-For on every request does not escape the throttle
    served.reset_auth(login_free_failures=2, login_attempts_per_min=1000)
    direct = served.client("203.0.113.7")
    codes = [direct.post(LOGIN, json={"username": "disp", "password": "nope"},
                         headers={"X-Forwarded-For": f"10.0.{i}.1"}).status_code for i in range(6)]
    assert 429 in codes
    # behind a trusted proxy each forwarded client has its own budget
    served.reset_auth(login_free_failures=2, login_attempts_per_min=1000, trusted_proxies="192.0.2.0/24")
    proxy = served.client("192.0.2.10")
    codes = [proxy.post(LOGIN, json={"username": "disp", "password": "nope"},
                        headers={"X-Forwarded-For": f"10.0.{i}.1"}).status_code for i in range(6)]
    assert codes == [401] * 6
    ok = proxy.post(LOGIN, json={"username": "disp", "password": "the-right-password"},
                    headers={"X-Forwarded-For": "10.0.0.1, 192.0.2.11"})
    assert ok.status_code == 200


def test_client_address_rules() -> None:
    trusted = parse_networks("192.0.2.0/24, 2001:db8::1")
    assert client_address("203.0.113.7", "10.0.0.1", trusted) == "203.0.113.7"
    assert client_address("192.0.2.10", "10.0.0.1", trusted) == "10.0.0.1"
    assert client_address("192.0.2.10", "6.6.6.6, 10.0.0.1, 192.0.2.3", trusted) == "10.0.0.1"
    assert client_address("2001:db8::1", "10.0.0.2", trusted) == "10.0.0.2"
    assert client_address("192.0.2.10", "not-an-ip", trusted) == "192.0.2.10"
    assert client_address("192.0.2.10", None, trusted) == "192.0.2.10"
    assert client_address("192.0.2.10", "10.0.0.1", ()) == "192.0.2.10"


def test_unknown_api_keys_are_limited_per_client(served: Served) -> None:
    auth = served.reset_auth(unknown_key_rate_per_min=30)  # burst 5
    lookups = {"n": 0}
    original = auth.principal_for_key

    def counted(key: str) -> Any:
        lookups["n"] += 1
        return original(key)

    auth.principal_for_key = counted  # type: ignore[method-assign]
    prober = served.client("203.0.113.50")
    codes = [prober.get("/v1/parking/availability", headers={"X-API-Key": f"its_x_{secrets.token_hex(8)}"}).status_code
             for _ in range(20)]
    assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
    assert lookups["n"] == 5  # refused before the query
    good = create_api_key(served.db, "honest", 1000)
    assert served.client("10.3.3.3").get("/v1/parking/availability", headers={"X-API-Key": good}).status_code == 200


def test_session_token_only_in_the_cookie_and_auth_answers_not_stored(served: Served) -> None:
    served.reset_auth()
    client = served.client("10.4.4.4")
    failed = _login(client, "disp", "wrong")
    assert failed.status_code == 401 and failed.headers["cache-control"] == "no-store"
    r = _login(client, "disp", "the-right-password")
    assert r.status_code == 200
    assert set(r.json()) == {"username", "role", "csrf_token"}
    token = r.cookies[SESSION_COOKIE]
    assert token not in r.text
    assert "httponly" in r.headers["set-cookie"].lower()
    me = client.get("/v1/auth/me")
    assert me.status_code == 200 and me.headers["cache-control"] == "no-store"
    assert r.headers["cache-control"] == "no-store"
    out = client.post("/v1/auth/logout", headers={"X-CSRF-Token": r.json()["csrf_token"]})
    assert out.status_code == 200 and out.headers["cache-control"] == "no-store"
    # the control-centre scripts never read a token from a body
    static = Path(__file__).resolve().parents[2] / "its" / "app" / "control" / "static"
    assert not any(".token" in p.read_text() or "['token']" in p.read_text() for p in static.glob("*.js"))
