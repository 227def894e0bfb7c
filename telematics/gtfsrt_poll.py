"""GTFS-realtime in over HTTP: poll an agency's VehiclePositions feed into the ingest path.

Agencies publish their feeds by URL. `GtfsrtPoller` fetches one with conditional requests
(``If-None-Match`` / ``If-Modified-Since``: a ``304`` publishes nothing), backs off
exponentially with jitter on errors, skips a feed whose header is older than
``max_feed_age_s``, drops entities it has already published (same vehicle, same timestamp)
and publishes the rest, as one ``FeedMessage`` with the feed's header, on the agency's
gateway topic (``its/v1/vehicles/{agency}/{gateway_id}/position/gtfsrt``). From there the
message takes the platform's one ingest path: the collector validates it with
`telematics.ingest.parse_gtfsrt_position`, stores or dead-letters it, and the live services
read it with the same parser. TripUpdates entities are not republished (the platform makes
its own predictions).

The decision of what to publish (`select_new_positions`) and the back-off (`backoff_s`) are
pure functions; `GtfsrtPoller` is the thin I/O shell around them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import httpx
from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2
from prometheus_client import Counter, Gauge, Histogram

from telematics.ingest import GTFSRT_POSITION_TOPIC

__all__ = [
    "ENTITIES",
    "ERRORS",
    "FEED_AGE",
    "FETCH_SECONDS",
    "GtfsrtPoller",
    "PollConfig",
    "PollOutcome",
    "PollResult",
    "backoff_s",
    "decode_feed",
    "select_new_positions",
    "vehicle_key",
]

log = logging.getLogger(__name__)

FETCH_SECONDS = Histogram("its_gtfsrt_fetch_seconds", "Time to fetch a GTFS-realtime feed over HTTP", ["agency"],
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
FEED_AGE = Gauge("its_gtfsrt_feed_age_seconds", "Age of the last fetched feed (now - header timestamp)", ["agency"])
ENTITIES = Counter("its_gtfsrt_entities_total", "Vehicle entities fetched, by outcome (published, unchanged)",
                   ["agency", "outcome"])
ERRORS = Counter("its_gtfsrt_errors_total", "Failed or refused fetches, by kind", ["agency", "kind"])


class PollOutcome(StrEnum):
    """What one fetch led to."""

    PUBLISHED = "published"
    UNCHANGED = "unchanged"  # a new body whose positions were all published before
    NOT_MODIFIED = "not_modified"  # HTTP 304
    STALE = "stale"  # header older than max_feed_age_s
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class PollConfig:
    """Where and how to poll.

    Attributes
    ----------
    url : str
        Feed URL.
    agency : str
        Platform agency id (the topic's agency level).
    gateway_id : str
        The topic's vehicle level for the relayed feed (the entities name their vehicles).
    interval_s : float
        Seconds between fetches when all is well.
    timeout_s : float
        HTTP timeout (s).
    headers : dict
        Extra request headers (API keys).
    max_feed_age_s : float
        A feed whose header timestamp is older than this (s) is skipped.
    backoff_base_s, backoff_max_s : float
        Exponential back-off after consecutive failures (s).
    """

    url: str
    agency: str
    gateway_id: str = "gtfsrt"
    interval_s: float = 15.0
    timeout_s: float = 10.0
    headers: Mapping[str, str] = field(default_factory=dict)
    max_feed_age_s: float = 600.0
    backoff_base_s: float = 2.0
    backoff_max_s: float = 300.0


@dataclass(frozen=True, slots=True)
class PollResult:
    """One fetch: outcome, HTTP status (0 without an answer), entities seen and published."""

    outcome: PollOutcome
    status: int = 0
    vehicles: int = 0
    published: int = 0
    detail: str = ""


def vehicle_key(entity: gtfs_realtime_pb2.FeedEntity) -> str:
    """The vehicle an entity describes: ``vehicle.id``, else its label, else the entity id."""
    vp = entity.vehicle
    return vp.vehicle.id or vp.vehicle.label or entity.id


def decode_feed(body: bytes) -> gtfs_realtime_pb2.FeedMessage:
    """Decode a FeedMessage; raise ``ValueError`` for a truncated or foreign body."""
    feed = gtfs_realtime_pb2.FeedMessage()
    try:
        feed.ParseFromString(body)
    except DecodeError as exc:
        raise ValueError(f"not a GTFS-realtime FeedMessage ({exc})") from None
    if not feed.HasField("header") or not feed.header.gtfs_realtime_version:
        raise ValueError("not a GTFS-realtime FeedMessage (no header version)")
    return feed


def select_new_positions(feed: gtfs_realtime_pb2.FeedMessage, published: Mapping[str, int]
                         ) -> tuple[gtfs_realtime_pb2.FeedMessage, dict[str, int]]:
    """The vehicle positions not published before, and the updated published state.

    Parameters
    ----------
    feed : FeedMessage
        The fetched feed.
    published : mapping
        Vehicle key -> timestamp (epoch s) of its last published position.

    Returns
    -------
    (FeedMessage, dict)
        A FeedMessage with the feed's header and only the new or changed vehicle positions
        (an entity without its own timestamp takes the header's), and the new state.
    """
    out = gtfs_realtime_pb2.FeedMessage()
    out.header.CopyFrom(feed.header)
    state = dict(published)
    for entity in feed.entity:
        if not entity.HasField("vehicle"):
            continue
        key = vehicle_key(entity)
        stamp = int(entity.vehicle.timestamp or feed.header.timestamp)
        if key and state.get(key) == stamp:
            continue
        out.entity.add().CopyFrom(entity)
        if key:
            state[key] = stamp
    return out, state


def backoff_s(failures: int, base_s: float, max_s: float, rng: random.Random) -> float:
    """Wait after ``failures`` consecutive failures: ``base * 2^(failures-1)`` capped at
    ``max_s``, times a jitter in [0.5, 1] (s); 0 when there was no failure."""
    if failures <= 0:
        return 0.0
    return min(max_s, base_s * 2.0 ** (failures - 1)) * rng.uniform(0.5, 1.0)


class GtfsrtPoller:
    """Polls one feed and publishes what is new (see the module docstring)."""

    def __init__(self, config: PollConfig, publish: Callable[[str, bytes], None],
                 client: httpx.Client | None = None, clock: Callable[[], float] = time.time,
                 seed: int | None = None) -> None:
        self.config = config
        self._publish = publish
        self._client = client or httpx.Client(timeout=config.timeout_s, follow_redirects=True)
        self._clock = clock
        self._rng = random.Random(seed)
        self.topic = GTFSRT_POSITION_TOPIC.concrete(config.agency, config.gateway_id)
        self.etag: str | None = None
        self.last_modified: str | None = None
        self.published: dict[str, int] = {}
        self.failures = 0

    def _request_headers(self) -> dict[str, str]:
        headers = dict(self.config.headers)
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def _fail(self, kind: str, detail: str, status: int = 0) -> PollResult:
        self.failures += 1
        ERRORS.labels(self.config.agency, kind).inc()
        log.warning("gtfsrt %s: %s (%s)", self.config.url, kind, detail)
        return PollResult(PollOutcome.ERROR, status, detail=f"{kind}: {detail}")

    def poll_once(self) -> PollResult:
        """Fetch once and publish what is new."""
        agency = self.config.agency
        started = time.perf_counter()
        try:
            response = self._client.get(self.config.url, headers=self._request_headers())
        except httpx.TimeoutException as exc:
            return self._fail("timeout", str(exc) or "timed out")
        except httpx.HTTPError as exc:
            return self._fail("connection", str(exc))
        finally:
            FETCH_SECONDS.labels(agency).observe(time.perf_counter() - started)
        if response.status_code == 304:
            self.failures = 0
            return PollResult(PollOutcome.NOT_MODIFIED, 304)
        if response.status_code != 200:
            return self._fail("http_status", f"HTTP {response.status_code}", response.status_code)
        try:
            feed = decode_feed(response.content)
        except ValueError as exc:
            return self._fail("decode", str(exc), 200)
        self.etag = response.headers.get("etag") or None
        self.last_modified = response.headers.get("last-modified") or None
        self.failures = 0
        age_s = self._clock() - float(feed.header.timestamp) if feed.header.timestamp else float("inf")
        FEED_AGE.labels(agency).set(age_s)
        vehicles = sum(1 for e in feed.entity if e.HasField("vehicle"))
        if age_s > self.config.max_feed_age_s:
            ERRORS.labels(agency, "stale").inc()
            log.warning("gtfsrt %s: feed is %.0f s old, skipped", self.config.url, age_s)
            return PollResult(PollOutcome.STALE, 200, vehicles, detail=f"feed {age_s:.0f} s old")
        new, state = select_new_positions(feed, self.published)
        ENTITIES.labels(agency, "unchanged").inc(vehicles - len(new.entity))
        if not new.entity:
            return PollResult(PollOutcome.UNCHANGED, 200, vehicles)
        self._publish(self.topic, new.SerializeToString())
        self.published = state
        ENTITIES.labels(agency, "published").inc(len(new.entity))
        return PollResult(PollOutcome.PUBLISHED, 200, vehicles, len(new.entity))

    def next_wait_s(self) -> float:
        """Seconds to wait before the next fetch: the interval, or the back-off after failures."""
        if self.failures:
            return backoff_s(self.failures, self.config.backoff_base_s, self.config.backoff_max_s, self._rng)
        return self.config.interval_s

    def run(self, stop: threading.Event, duration_s: float | None = None) -> list[PollResult]:
        """Poll until ``stop`` is set (or ``duration_s`` has passed); return every result."""
        results = []
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
            results.append(self.poll_once())
            wait = self.next_wait_s()
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            stop.wait(wait)
        return results

    def close(self) -> None:
        self._client.close()
