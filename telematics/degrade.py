"""Degraded feeds derived from real AVL: what a new city's feed looks like.

Pure functions over an AVL frame (`telematics.avl.read_avl`) and a
`telematics.gtfs.Feed`, each returning a new object (the inputs are never modified):

* `subsample` keeps a vehicle's ping only once ``interval_s`` has passed since the last
  kept one (a slower reporting rate; it cannot make a feed faster than it was recorded);
* `hide_trip_ids` blanks the trip id (``route``: the route is still reported) or the trip,
  route and service date (``hidden``: vehicle id and position only);
* `add_gps_noise` adds seeded Gaussian noise of ``sigma_m`` metres to each of the east and
  north components of every position;
* `drop_motion` blanks the reported speed and bearing;
* `drop_shapes` removes ``shapes.txt`` (paths are then the stop sequences);
* `shift_service` moves the pings' clock and every scheduled time by the same number of
  seconds, keeping the service date, so a day's service runs across local midnight
  (scheduled times past 24:00, pings dated the next calendar day).

`DegradeSpec` names one matrix cell (``parse_spec`` reads ``interval=60,shapes=0,...``)
and `degrade` applies it. The recorded trip ids stay in ``truth_trip_id`` and
``truth_start_date`` for scoring; nothing given to the platform reads them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.gtfs import Feed, service_day_start

__all__ = [
    "DegradeSpec",
    "IdMode",
    "SpecError",
    "add_gps_noise",
    "degrade",
    "drop_motion",
    "drop_shapes",
    "hide_trip_ids",
    "midnight_shift_s",
    "parse_spec",
    "shift_service",
    "subsample",
]

IdMode = Literal["given", "route", "hidden"]
#: Share of the interval a kept ping may come early (pings recorded every 30-31 s keep every other at 60 s).
INTERVAL_SLACK = 0.9
EARTH_RADIUS_M = 6_371_008.8


class SpecError(ValueError):
    """A degradation spec is invalid; the message names the field."""


@dataclass(frozen=True)
class DegradeSpec:
    """One cell of the degraded-feed matrix.

    Attributes
    ----------
    interval_s : float or None
        Smallest time between kept pings of one vehicle (s); None keeps the recorded rate.
    shapes : bool
        Whether ``shapes.txt`` is kept.
    ids : {"given", "route", "hidden"}
        Trip ids reported, only the route, or nothing but vehicle id and position.
    noise_m : float
        Standard deviation (m) of the Gaussian noise added to each horizontal component.
    motion : bool
        Whether reported speed and bearing are kept.
    midnight : bool
        Whether the day is shifted so the service runs across local midnight.
    seed : int
        Seed of the noise.
    """

    interval_s: float | None = None
    shapes: bool = True
    ids: IdMode = "given"
    noise_m: float = 0.0
    motion: bool = True
    midnight: bool = False
    seed: int = 0

    @property
    def label(self) -> str:
        """Short text of the cell, the form `parse_spec` reads."""
        interval = "native" if self.interval_s is None else f"{self.interval_s:g}"
        return (f"interval={interval},shapes={int(self.shapes)},ids={self.ids},noise={self.noise_m:g},"
                f"motion={int(self.motion)},midnight={int(self.midnight)}")


def _flag(field: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SpecError(f"degrade spec field {field}: expected 0 or 1, got {value!r}")


def _number(field: str, value: str, low: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise SpecError(f"degrade spec field {field}: expected a number, got {value!r}") from None
    if not np.isfinite(number) or number < low:
        raise SpecError(f"degrade spec field {field}: expected a number >= {low:g}, got {value!r}")
    return number


def parse_spec(text: str) -> DegradeSpec:
    """Read a cell like ``interval=60,shapes=0,ids=hidden,noise=15,motion=0,midnight=1``.

    Parameters
    ----------
    text : str
        Comma-separated ``field=value`` pairs; omitted fields keep `DegradeSpec`'s defaults
        (``interval=native`` keeps the recorded rate; an empty text is the undegraded feed).

    Returns
    -------
    DegradeSpec

    Raises
    ------
    SpecError
        An unknown field or a bad value (the message names it).
    """
    spec = DegradeSpec()
    for part in filter(None, (p.strip() for p in text.split(","))):
        field, sep, value = part.partition("=")
        field, value = field.strip(), value.strip()
        if not sep:
            raise SpecError(f"degrade spec: expected field=value, got {part!r}")
        if field == "interval":
            spec = dataclasses.replace(spec, interval_s=None if value == "native" else _number(field, value, 1.0))
        elif field == "shapes":
            spec = dataclasses.replace(spec, shapes=_flag(field, value))
        elif field == "ids":
            if value not in get_args(IdMode):
                raise SpecError(f"degrade spec field ids: expected one of {', '.join(get_args(IdMode))}, "
                                f"got {value!r}")
            spec = dataclasses.replace(spec, ids=value)  # type: ignore[arg-type]
        elif field == "noise":
            spec = dataclasses.replace(spec, noise_m=_number(field, value, 0.0))
        elif field == "motion":
            spec = dataclasses.replace(spec, motion=_flag(field, value))
        elif field == "midnight":
            spec = dataclasses.replace(spec, midnight=_flag(field, value))
        elif field == "seed":
            spec = dataclasses.replace(spec, seed=int(_number(field, value, 0.0)))
        else:
            raise SpecError(f"degrade spec: unknown field {field!r} (interval, shapes, ids, noise, motion, "
                            "midnight, seed)")
    return spec


def subsample(avl: pd.DataFrame, interval_s: float) -> pd.DataFrame:
    """Each vehicle's pings at least ``interval_s`` apart (greedy from its first ping).

    A ping is kept when at least ``INTERVAL_SLACK * interval_s`` has passed since the
    vehicle's last kept ping, so a feed recorded every 30-31 s keeps every other ping at 60 s.

    Parameters
    ----------
    avl : DataFrame
        Positions with ``vehicle_id`` and ``time_s`` (epoch s).
    interval_s : float
        Reporting interval (s).

    Returns
    -------
    DataFrame
        The kept rows, in the input's order, with a fresh index.
    """
    if len(avl) == 0:
        return avl.reset_index(drop=True)
    order = np.lexsort((avl["time_s"].to_numpy(), avl["vehicle_id"].to_numpy(dtype=str)))
    t = avl["time_s"].to_numpy(dtype=np.float64)[order]
    v = avl["vehicle_id"].to_numpy(dtype=str)[order]
    keep = np.zeros(len(t), dtype=bool)
    gap = INTERVAL_SLACK * interval_s
    last_t, last_v = -np.inf, None
    for i in range(len(t)):  # greedy: each decision depends on the last kept ping
        if v[i] != last_v or t[i] - last_t >= gap:
            keep[i] = True
            last_t, last_v = t[i], v[i]
    rows = np.sort(order[keep])
    return avl.iloc[rows].reset_index(drop=True)


def hide_trip_ids(avl: pd.DataFrame, mode: IdMode) -> pd.DataFrame:
    """Blank what the feed would not report: nothing (``given``), the trip id (``route``),
    or trip, route and service date (``hidden``).

    The recorded values are kept in ``truth_trip_id`` and ``truth_start_date`` (scoring only).
    """
    out = avl.copy()
    if "truth_trip_id" not in out:
        out["truth_trip_id"] = out["trip_id"]
        out["truth_start_date"] = out["start_date"]
    if mode in ("route", "hidden"):
        out["trip_id"] = ""
    if mode == "hidden":
        out["route_id"] = ""
        out["start_date"] = ""
    return out


def add_gps_noise(avl: pd.DataFrame, sigma_m: float, seed: int = 0) -> pd.DataFrame:
    """Positions moved by seeded Gaussian noise of ``sigma_m`` metres east and north (independent).

    Parameters
    ----------
    avl : DataFrame
        Positions with ``lat``, ``lon`` (degrees).
    sigma_m : float
        Standard deviation of each component (m); 0 returns a copy.
    seed : int
        Seed of `numpy.random.default_rng`: the same seed gives the same noise.
    """
    out = avl.copy()
    if sigma_m <= 0 or len(out) == 0:
        return out
    rng = np.random.default_rng(seed)
    east, north = rng.normal(0.0, sigma_m, size=(2, len(out)))
    lat = out["lat"].to_numpy(dtype=np.float64)
    out["lat"] = lat + np.degrees(north / EARTH_RADIUS_M)
    out["lon"] = out["lon"].to_numpy(dtype=np.float64) + np.degrees(
        east / (EARTH_RADIUS_M * np.cos(np.radians(lat))))
    return out


def drop_motion(avl: pd.DataFrame) -> pd.DataFrame:
    """Reported speed and bearing blanked (NaN)."""
    out = avl.copy()
    out["speed_mps"] = np.nan
    out["bearing"] = np.nan
    return out


def drop_shapes(feed: Feed) -> Feed:
    """The feed without ``shapes.txt`` (trips keep their ``shape_id``, which no longer resolves)."""
    return dataclasses.replace(feed, shapes=None)


def midnight_shift_s(times_s: npt.ArrayLike, timezone: str) -> float:
    """Shift (s, a whole number of minutes) that puts the middle of ``times_s`` at local midnight.

    Parameters
    ----------
    times_s : array_like
        Ping times (epoch s), at least one.
    timezone : str
        IANA zone of the feed.
    """
    t = np.asarray(times_s, dtype=np.float64)
    middle = 0.5 * (float(t.min()) + float(t.max()))
    local = pd.Timestamp(middle, unit="s", tz="UTC").tz_convert(timezone)
    next_midnight = service_day_start(local.date() + dt.timedelta(days=1), timezone)
    return float(round((next_midnight - middle) / 60.0) * 60.0)


def shift_service(avl: pd.DataFrame, feed: Feed, shift_s: float) -> tuple[pd.DataFrame, Feed]:
    """Pings and schedule moved ``shift_s`` seconds later, service dates unchanged.

    Scheduled times (``stop_times`` arrival and departure, ``frequencies`` start and end)
    grow by ``shift_s`` and may pass 24:00, as a night service's do; the pings' clock moves
    with them, so every vehicle keeps its lateness and the pings after local midnight
    belong to the previous service day.

    Parameters
    ----------
    avl : DataFrame
        Positions with ``time_s``.
    feed : Feed
        The schedule.
    shift_s : float
        Whole seconds, >= 0 (GTFS times are not negative).
    """
    if shift_s < 0 or shift_s != int(shift_s):
        raise SpecError(f"service shift must be whole seconds >= 0, got {shift_s}")
    out = avl.copy()
    out["time_s"] = out["time_s"].to_numpy(dtype=np.float64) + shift_s
    st = feed.stop_times.copy()
    for column in ("arrival_time", "departure_time"):
        st[column] = st[column] + int(shift_s)
    freq = feed.frequencies
    if freq is not None:
        freq = freq.copy()
        for column in ("start_time", "end_time"):
            freq[column] = freq[column] + int(shift_s)
    return out, dataclasses.replace(feed, stop_times=st, frequencies=freq)


def degrade(avl: pd.DataFrame, feed: Feed, spec: DegradeSpec) -> tuple[pd.DataFrame, Feed, float]:
    """Apply one matrix cell to a recorded day.

    Parameters
    ----------
    avl : DataFrame
        Positions from `telematics.avl.read_avl`.
    feed : Feed
        The schedule.
    spec : DegradeSpec
        The cell.

    Returns
    -------
    avl : DataFrame
        The degraded positions (time order), with the recorded ``truth_trip_id`` and
        ``truth_start_date``.
    feed : Feed
        The schedule as the platform gets it (shifted, without shapes).
    shift_s : float
        The service shift applied (0 without ``midnight``); the truth must be shifted alike.
    """
    out = hide_trip_ids(avl, "given")
    shift = 0.0
    if spec.midnight and len(out):
        shift = midnight_shift_s(out["time_s"], feed.timezone)
        out, feed = shift_service(out, feed, shift)
    if spec.interval_s is not None:
        out = subsample(out, spec.interval_s)
    out = add_gps_noise(out, spec.noise_m, spec.seed)
    if not spec.motion:
        out = drop_motion(out)
    if not spec.shapes:
        feed = drop_shapes(feed)
    out = hide_trip_ids(out, spec.ids)
    out = out.sort_values(["time_s", "vehicle_id"], kind="stable").reset_index(drop=True)
    return out, feed, shift
