"""Parking sensor simulator: realistic counter and per-space messages, or a replayed history.

Synthetic mode (``its simulate parking --sites SITES --profile office``): each site follows a
daily occupancy curve (by local time of day) with noise. Off-street sites publish counter
messages (entry/exit deltas, with a few missed counts, and an absolute reading every
``ABSOLUTE_EVERY`` messages that lets the platform correct the drift); on-street zones publish
one message per space change, plus heartbeats, and occasionally a sensor drops out (its Last
Will ``{"online": false}`` is published and it goes silent for a while).

Replay mode (``--replay HISTORY.csv --speedup N``): each row of a parking history CSV becomes an
absolute counter message, published ``N`` times faster than recorded and stamped with the
(compressed) wall-clock time of publication; faulty rows are replayed as they are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import orjson
import pandas as pd

from its.devices import device_status_topic
from parking.ingest import SENSOR_KIND, count_topic, space_topic
from parking.sites import Site

__all__ = [
    "DEFAULT_PROFILE",
    "PROFILES",
    "Publish",
    "SiteSimulator",
    "occupancy_target",
    "replay_schedule",
    "run_replay",
    "run_simulation",
    "simulated_history",
]

ABSOLUTE_EVERY = 10
MISSED_COUNT_P = 0.03
DROPOUT_P = 0.002  # per sensor and step
DROPOUT_STEPS = (20, 120)
NOISE_FLIP_P = 0.003

# occupancy ratio at hours 0..24 (local), linearly interpolated
PROFILES: dict[str, npt.NDArray[np.float64]] = {
    "office": np.array([.05, .04, .04, .04, .04, .05, .12, .35, .70, .88, .93, .94, .90, .92, .93,
                        .90, .75, .45, .22, .12, .08, .06, .05, .05, .05]),
    "retail": np.array([.03, .02, .02, .02, .02, .03, .05, .10, .25, .45, .65, .80, .88, .90, .88,
                        .85, .80, .70, .55, .40, .25, .12, .06, .04, .03]),
    "hospital": np.array([.30, .28, .27, .27, .28, .32, .45, .65, .82, .90, .93, .93, .92, .92, .91,
                          .88, .80, .65, .55, .48, .42, .38, .34, .32, .30]),
    "flat": np.full(25, 0.5),
}

#: The curve ``its simulate parking`` (and so the demo) follows unless told otherwise (its
#: ``--profile`` default in :mod:`parking.cli`, kept a literal there so the CLI starts fast).
DEFAULT_PROFILE = "retail"
COUNTER_NOISE = 0.02  # sd of a counted site's occupancy around its curve (share of capacity)
COUNTER_MEMORY_S = 3600.0  # e-folding time of that deviation (s)

Publish = Callable[[str, bytes, bool], None]


def occupancy_target(profile: str, local_hour: float) -> float:
    """Expected occupancy ratio (0-1) of a profile at a local hour of day (h, 0-24)."""
    curve = PROFILES[profile]
    return float(np.interp(local_hour % 24.0, np.arange(25), curve))


@dataclass
class SiteSimulator:
    """State of one simulated site; :meth:`step` returns the messages of one time step."""

    site: Site
    profile: str
    rng: np.random.Generator
    occupied: int = 0
    counted: int = 0
    messages: int = 0
    spaces: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))
    silent_until: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    step_no: int = 0

    def __post_init__(self) -> None:
        n = len(self.site.spaces)
        self.spaces = np.zeros(n, dtype=bool)
        self.silent_until = np.zeros(n, dtype=np.int64)

    def step(self, now: datetime, zone: ZoneInfo) -> list[tuple[str, bytes, bool]]:
        """Advance to ``now``; return ``(topic, payload, retain)`` messages to publish."""
        self.step_no += 1
        local = now.astimezone(zone)
        target = occupancy_target(self.profile, local.hour + local.minute / 60 + local.second / 3600)
        ts = round(now.timestamp(), 3)
        if self.site.spaces:
            return self._spaces_step(target, ts)
        return self._counter_step(target, ts)

    def _counter_step(self, target: float, ts: float) -> list[tuple[str, bytes, bool]]:
        cap = self.site.capacity
        goal = float(np.clip(target * cap + self.rng.normal(0, 0.02 * cap), 0, cap))
        change = round((goal - self.occupied) * 0.3)
        turnover = int(self.rng.poisson(0.01 * cap))
        entries = turnover + max(change, 0)
        exits = min(turnover + max(-change, 0), self.occupied + entries)
        self.occupied = self.occupied + entries - exits
        self.messages += 1
        if self.messages % ABSOLUTE_EVERY == 1:
            self.counted = self.occupied
            return [(count_topic(self.site.site_id), orjson.dumps({"ts": ts, "occupied": self.occupied}), False)]
        seen_entries = int(self.rng.binomial(entries, 1 - MISSED_COUNT_P)) if entries else 0
        self.counted += seen_entries - exits
        payload = {"ts": ts, "entries": seen_entries, "exits": exits}
        return [(count_topic(self.site.site_id), orjson.dumps(payload), False)]

    def _spaces_step(self, target: float, ts: float) -> list[tuple[str, bytes, bool]]:
        n = self.spaces.size
        out: list[tuple[str, bytes, bool]] = []
        # arrivals fill free spaces and departures free occupied ones, toward the target
        rate = 0.08
        p_arrive = rate * target
        p_leave = rate * (1 - target)
        draw = self.rng.random(n)
        flip = np.where(self.spaces, draw < p_leave, draw < p_arrive) | (self.rng.random(n) < NOISE_FLIP_P)
        self.spaces ^= flip
        alive = self.silent_until <= self.step_no
        # sensors coming back announce themselves
        back = alive & (self.silent_until == self.step_no) & (self.step_no > 1)
        dropping = alive & (self.rng.random(n) < DROPOUT_P)
        self.silent_until = np.where(
            dropping, self.step_no + self.rng.integers(*DROPOUT_STEPS, size=n), self.silent_until
        )
        heartbeat = self.step_no % 30 == 1
        for i in np.flatnonzero((flip | back | heartbeat) & alive & ~dropping):
            sp = self.site.spaces[i]
            out.append((space_topic(self.site.site_id, sp.space_id),
                        orjson.dumps({"ts": ts, "occupied": bool(self.spaces[i]),
                                      "battery_v": round(3.6 - (0.0005 * self.step_no) % 0.4, 3),
                                      "rssi": int(self.rng.integers(-110, -70))}), False))
        for i in np.flatnonzero(dropping | back):
            device = self.site.sensor_of(self.site.spaces[i])
            out.append((device_status_topic(SENSOR_KIND, device),
                        orjson.dumps({"online": bool(back[i]), "ts": ts}), True))
        return out


def run_simulation(
    sites: list[Site], profile: str, publish: Publish, duration_s: float, step_s: float = 5.0,
    seed: int = 0, default_zone: str = "UTC", clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Publish synthetic messages every ``step_s`` (s) for ``duration_s`` (s; 0 = until interrupted).

    Returns the number of messages published.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    rng = np.random.default_rng(seed)
    sims = [SiteSimulator(s, profile, np.random.default_rng(rng.integers(1 << 32))) for s in sites]
    zones = {s.site_id: ZoneInfo(s.timezone or default_zone) for s in sites}
    start = clock()
    sent = 0
    while True:
        now = clock()
        stamp = datetime.fromtimestamp(now, tz=UTC)
        for sim in sims:
            for topic, payload, retain in sim.step(stamp, zones[sim.site.site_id]):
                publish(topic, payload, retain)
                sent += 1
        if duration_s > 0 and now - start + step_s > duration_s:
            return sent
        sleep(max(0.0, step_s - (clock() - now)))


def simulated_history(
    sites: Sequence[Site], profile: str, end: datetime, days: int, step_s: float = 900.0, seed: int = 0,
    default_zone: str = "UTC",
) -> pd.DataFrame:
    """A generated occupancy history of ``sites``, as :class:`SiteSimulator` would have produced it.

    Readings every ``step_s`` on a grid aligned to whole multiples of ``step_s`` (UTC), over the
    ``days`` days before ``end`` (all strictly before it). Each follows the same daily curve as
    the live simulator (``profile``, by the site's local time of day): a counted (off-street)
    site sits at ``curve x capacity`` plus an AR(1) deviation (sd ``COUNTER_NOISE`` of capacity,
    memory ``COUNTER_MEMORY_S``); a zone of sensed spaces holds a binomial number of occupied
    spaces (each space occupied with the curve's probability, as the live per-space
    flips mix within minutes). Synthetic data, not a recording.

    Parameters
    ----------
    sites : sequence of Site
        Sites to generate for (capacity in spaces; ``timezone`` else ``default_zone``).
    profile : str
        A key of :data:`PROFILES`.
    end : datetime
        Timezone-aware instant the history ends before.
    days : int
        Length of the history (days, > 0).
    step_s : float
        Seconds between readings (s, > 0).
    seed : int
        Random seed (the same arguments give the same history).
    default_zone : str
        IANA zone of sites without one.

    Returns
    -------
    DataFrame
        ``site_id``, ``time`` (UTC), ``occupied`` (spaces, within ``[0, capacity]``), sorted
        by site and time.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if days <= 0 or step_s <= 0 or end.tzinfo is None:
        raise ValueError("days and step_s must be positive and end timezone-aware")
    last = math.ceil(end.timestamp() / step_s) - 1  # the last grid point strictly before end
    ticks = np.arange(last - round(days * 86400 / step_s) + 1, last + 1, dtype=np.int64)
    times = pd.to_datetime(ticks * step_s, unit="s", utc=True)
    rng = np.random.default_rng(seed)
    phi = math.exp(-step_s / COUNTER_MEMORY_S)
    frames = []
    for site in sites:
        local = times.tz_convert(site.timezone or default_zone)
        hours = (local.hour + local.minute / 60 + local.second / 3600).to_numpy(np.float64)
        target = np.interp(hours, np.arange(25), PROFILES[profile])
        cap = site.capacity
        if site.spaces:
            occupied = rng.binomial(cap, target)
        else:
            shocks = rng.normal(0.0, COUNTER_NOISE * cap * math.sqrt(1 - phi * phi), ticks.size)
            deviation = np.empty(ticks.size)
            deviation[0] = rng.normal(0.0, COUNTER_NOISE * cap)
            for i in range(1, ticks.size):
                deviation[i] = phi * deviation[i - 1] + shocks[i]
            occupied = np.clip(np.round(target * cap + deviation), 0, cap).astype(np.int64)
        frames.append(pd.DataFrame({"site_id": site.site_id, "time": times, "occupied": occupied}))
    if not frames:
        return pd.DataFrame({"site_id": pd.Series(dtype=str), "time": pd.Series(dtype="datetime64[ns, UTC]"),
                             "occupied": pd.Series(dtype=np.int64)})
    return pd.concat(frames, ignore_index=True)


def replay_schedule(history: pd.DataFrame, speedup: float) -> tuple[npt.NDArray[np.float64], list[str], npt.NDArray[np.int64]]:
    """Offsets (s after start), topics and occupancies of a history replayed ``speedup`` times faster.

    Parameters
    ----------
    history : DataFrame
        As from :func:`parking.cleaning.read_history_csv` (raw, faults kept), any order.
    """
    if speedup <= 0 or not math.isfinite(speedup):
        raise ValueError("speedup must be a positive number")
    ordered = history.sort_values("time", kind="stable")
    seconds = ((ordered["time"] - ordered["time"].iloc[0]) // pd.Timedelta(seconds=1)).to_numpy(np.float64)
    topics = [count_topic(s) for s in ordered["site_id"]]
    return seconds / speedup, topics, ordered["occupied"].to_numpy(np.int64)


def _replay_messages(
    offsets: npt.NDArray[np.float64], topics: list[str], occupied: npt.NDArray[np.int64], start: float
) -> Iterator[tuple[float, str, bytes]]:
    for off, topic, occ in zip(offsets, topics, occupied, strict=True):
        yield start + float(off), topic, orjson.dumps({"ts": round(start + float(off), 3), "occupied": int(occ)})


def run_replay(
    history_csv: str | Path, speedup: float, publish: Publish, duration_s: float,
    clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Replay a parking history CSV as absolute counter messages for at most ``duration_s``
    (s; 0 = the whole history); return how many were sent."""
    from parking.cleaning import read_history_csv

    offsets, topics, occupied = replay_schedule(read_history_csv(history_csv), speedup)
    start = clock()
    sent = 0
    for due, topic, payload in _replay_messages(offsets, topics, occupied, start):
        if duration_s > 0 and due - start > duration_s:
            break
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        publish(topic, payload, False)
        sent += 1
    return sent
