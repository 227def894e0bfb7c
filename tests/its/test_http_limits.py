"""HTTP limits: request bodies, dates, event streams, header size and count, silent and slow
connections. The server's own behaviour (timeouts, header limits, a body never sent) is
tested on a real uvicorn on a free port configured as ``its serve`` configures it; the rest
through the real app with TestClient."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from .helpers import wait_for
from .served import Served, served_app, uvicorn_server

LOGIN = "/v1/auth/login"
STREAM = "/v1/parking/stream"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with served_app(tmp_path_factory.mktemp("data")) as s:
        yield s


@pytest.fixture(scope="module")
def port(served: Served) -> Iterator[int]:
    """The app on a real uvicorn with short timeouts and small stream caps."""
    settings = served.settings.model_copy(update={
        "http_header_timeout_s": 1.0, "http_keepalive_s": 1, "max_streams": 3, "max_streams_per_client": 2,
        "trusted_proxies": "127.0.0.1"})
    with uvicorn_server(served.app, settings) as p:
        yield p


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _head(sock: socket.socket) -> bytes:
    """Read until the end of a response head (or the connection closes)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes, float]:
    """Whether the server closes ``sock`` within ``seconds``; what it sent; when."""
    t0 = time.monotonic()
    sock.settimeout(seconds)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True, data, time.monotonic() - t0
            data += chunk
    except TimeoutError:
        return False, data, time.monotonic() - t0
    except ConnectionResetError:
        return True, data, time.monotonic() - t0


def _request(path: str, headers: str = "", method: str = "GET") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n".encode()


def test_request_bodies_above_the_limit_are_413(served: Served) -> None:
    served.reset_auth()
    client = served.client("10.5.5.5")
    limit = served.settings.max_body_bytes
    big = b'{"username": "disp", "password": "' + b"x" * limit + b'"}'
    r = client.post(LOGIN, content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert r.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield big[: limit // 2]
        yield big[limit // 2:]

    r = client.post(LOGIN, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    small = client.post(LOGIN, json={"username": "disp", "password": "x" * 100})
    assert small.status_code == 401  # control: under the limit the request is handled


@pytest.mark.parametrize("query", ["from=0001-01-01T00:00:00%2B01:00", "to=9999-12-31T23:59:59-05:00",
                                   "from=1969-12-31T00:00:00Z&to=1970-01-01T00:00:00Z",
                                   "from=2100-01-01T00:00:00Z&to=2100-01-02T00:00:00Z"])
def test_dates_outside_a_sane_range_are_422(served: Served, query: str) -> None:
    client = served.client("10.6.6.6")
    r = client.get(f"/v1/parking/sites/CNS-HOSPITAL/history?{query}")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_parameter"
    ok = client.get("/v1/parking/sites/CNS-HOSPITAL/history?from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z")
    assert ok.status_code == 200


def test_a_large_body_is_refused_before_it_is_sent(port: int) -> None:
    sock = _open(port)
    sock.sendall(_request(LOGIN, "Content-Type: application/json\r\nContent-Length: 52428800\r\n", "POST"))
    closed, data, _ = _closed_within(sock, 5)  # not one byte of the 50 MB was sent
    assert data.startswith(b"HTTP/1.1 413") and b'"payload_too_large"' in data
    assert closed
    sock.close()


def test_a_silent_connection_is_closed(port: int) -> None:
    sock = _open(port)
    closed, data, after = _closed_within(sock, 5)
    assert closed and data == b"" and 0.8 <= after <= 3.0, after
    sock.close()
    control = _open(port)  # a client that speaks is answered on the same server
    control.sendall(_request("/healthz"))
    assert _head(control).startswith(b"HTTP/1.1 200")
    closed, _, after = _closed_within(control, 5)  # then idle keep-alive ends after ~1 s
    assert closed and after <= 3.0, after
    control.close()


def test_a_slow_request_head_is_cut(port: int) -> None:
    sock = _open(port)
    t0 = time.monotonic()
    sock.sendall(b"GET /healthz HTTP/1.1\r\n")
    closed = False
    for i in range(40):  # one header line every 0.2 s would take 8 s
        time.sleep(0.2)
        try:
            sock.sendall(f"X-Slow-{i}: a\r\n".encode())
        except OSError:
            closed = True
            break
    if not closed:
        closed, _, _ = _closed_within(sock, 2)
    assert closed and time.monotonic() - t0 < 4.0
    sock.close()


@pytest.mark.parametrize(("headers", "status"), [
    ("".join(f"X-H{i}: v\r\n" for i in range(5000)), b"431"),            # 5,000 headers
    ("X-Big: " + "a" * 1_000_000 + "\r\n", b"431"),                        # 1 MB of header
    ("".join(f"X-H{i}: v\r\n" for i in range(50)), b"200"),               # control: 50 small ones
])
def test_header_count_and_size_are_limited(port: int, headers: str, status: bytes) -> None:
    sock = _open(port)
    with contextlib.suppress(OSError):  # the server may close while a refused head is still being sent
        sock.sendall(_request("/healthz", headers))
    head = _head(sock)
    assert head.startswith(b"HTTP/1.1 " + status), head[:200]
    if status == b"431":
        assert b'"header_too_large"' in head or _closed_within(sock, 3)[0]
    sock.close()


def _stream(port: int, client: str) -> tuple[socket.socket, bytes]:
    sock = _open(port)
    sock.sendall(_request(STREAM, f"Accept: text/event-stream\r\nX-Forwarded-For: {client}\r\n"))
    return sock, _head(sock)


def test_event_streams_are_capped_per_client_and_in_total(port: int, served: Served) -> None:
    opened: list[socket.socket] = []
    try:
        for client in ("10.0.0.1", "10.0.0.1"):
            sock, head = _stream(port, client)
            opened.append(sock)
            assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head, head
        third, head = _stream(port, "10.0.0.1")  # a third from the same client
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 30" in head.lower(), head
        assert _closed_within(third, 3)[0]
        other, head = _stream(port, "10.0.0.2")  # another client: still room in all (3)
        opened.append(other)
        assert head.startswith(b"HTTP/1.1 200"), head
        fourth, head = _stream(port, "10.0.0.3")  # the total is reached
        assert head.startswith(b"HTTP/1.1 503"), head
        fourth.close()
        opened.pop(0).close()  # a stream ends: its place is free again

        def reopened() -> bool:
            sock, head = _stream(port, "10.0.0.3")
            if head.startswith(b"HTTP/1.1 200"):
                opened.append(sock)
                return True
            sock.close()
            return False

        assert wait_for(reopened, 10)
    finally:
        for sock in opened:
            sock.close()
