"""GTFS ``frequencies.txt``: frequency-based trips expanded into concrete trip instances.

A trip listed in ``frequencies.txt`` is a template: its ``stop_times`` give the times
between stops, and each frequency row ``(start_time, end_time, headway_secs,
exact_times)`` runs it from ``start_time`` every ``headway_secs`` while the start is
before ``end_time`` (times at the trip's first stop, seconds of the service day).

* ``exact_times = 1`` (schedule-based): the instances are the exact timetable.
* ``exact_times = 0`` or absent (frequency-based): the same starts are nominal; only the
  headway is promised. The instances are kept so that vehicles can be assigned and
  arrivals predicted from them, and are marked ``exact_times = 0`` in ``trips``
  (arrivals without a vehicle are then only a headway promise, not a time).

Each instance is a trip ``{template}#{HH:MM:SS}`` (its start, as GTFS-realtime's
``start_time`` identifies it) with the template's stop times shifted to that start and no
``block_id`` (instances of one template are run by different vehicles). Pure functions over
`telematics.gtfs.Feed`; `parse_start_time` and `format_start_time` convert a GTFS-realtime
``start_time`` (``HH:MM:SS``, hours may pass 24) to seconds of the service day and back.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re

import pandas as pd

from telematics.gtfs import Feed

__all__ = ["expand_frequencies", "format_start_time", "instance_id", "instances", "parse_start_time"]

MAX_INSTANCES = 200_000  # a feed expanding to more trip instances than this is refused


_START_TIME = re.compile(r"(\d{1,2}):([0-5]\d):([0-5]\d)")


def format_start_time(start_s: int) -> str:
    """GTFS-realtime ``start_time`` ``HH:MM:SS`` of ``start_s`` (s of service day; hours may pass 24)."""
    h, rem = divmod(int(start_s), 3600)
    return f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}"


def parse_start_time(value: object) -> int | None:
    """Seconds of service day of a GTFS-realtime ``start_time``.

    Parameters
    ----------
    value : str, int, float or None
        ``H:MM:SS``/``HH:MM:SS`` text (hours may pass 24, ``25:10:00`` is 90,600 s), or
        seconds already; None, ``""`` and NaN (a NULL read back from the store) mean no run.

    Returns
    -------
    int or None
        Seconds since service-day midnight (s).

    Raises
    ------
    ValueError
        Text that is not a time ``HH:MM:SS``.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"start_time {value!r} is not a time HH:MM:SS")
        number = float(value)
        return None if math.isnan(number) else int(number)
    m = _START_TIME.fullmatch(value)
    if m is None:
        raise ValueError(f"start_time {value!r} is not a time HH:MM:SS")
    return int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3])


def instance_id(template: str, start_s: int) -> str:
    """Trip id of the instance of ``template`` starting at ``start_s`` (s of service day)."""
    return f"{template}#{format_start_time(start_s)}"


def instances(freq: pd.DataFrame) -> pd.DataFrame:
    """Trip instances of ``frequencies.txt`` rows (``trip_id, start_time, end_time,
    headway_secs`` in s of service day, optional ``exact_times``).

    Returns
    -------
    DataFrame
        ``template_trip_id, start_s`` (s of service day), ``exact_times`` and ``trip_id``
        (`instance_id`), one row per instance.

    Raises
    ------
    ValueError
        When the expansion exceeds `MAX_INSTANCES` trips.
    """
    starts: list[tuple[str, int, int]] = []  # template, start s, exact
    exact_col = (pd.to_numeric(freq["exact_times"], errors="coerce").fillna(0).astype(int).tolist()
                 if "exact_times" in freq.columns else [0] * len(freq))
    for trip, lo, hi, step, exact in zip(freq["trip_id"].astype(str), freq["start_time"].astype(int),
                                         freq["end_time"].astype(int), freq["headway_secs"].astype(int),
                                         exact_col, strict=True):
        starts.extend((trip, t, int(exact)) for t in range(int(lo), int(hi), int(step)))
        if len(starts) > MAX_INSTANCES:
            raise ValueError(f"frequencies.txt expands to more than {MAX_INSTANCES} trips")
    inst = pd.DataFrame(starts, columns=["template_trip_id", "start_s", "exact_times"]).drop_duplicates(
        ["template_trip_id", "start_s"])
    inst["trip_id"] = [instance_id(t, s) for t, s in zip(inst["template_trip_id"], inst["start_s"], strict=True)]
    return inst


def expand_frequencies(feed: Feed) -> Feed:
    """The feed with every frequency-based trip replaced by its instances.

    Returns ``feed`` itself when it has no ``frequencies``. ``trips`` gains the columns
    ``template_trip_id`` (the template, empty for ordinary trips), ``start_s`` (instance
    start, s of service day; -1 for ordinary trips) and ``exact_times`` (1 for ordinary
    trips and exact instances, 0 for frequency-based ones).

    Raises
    ------
    ValueError
        When the expansion exceeds `MAX_INSTANCES` trips.
    """
    freq = feed.frequencies
    if freq is None or freq.empty:
        return feed
    st = feed.stop_times
    first_dep = st.groupby("trip_id", sort=False)["departure_time"].min()
    inst = instances(freq)
    templates = set(inst["template_trip_id"])

    trips = feed.trips.copy()
    plain = trips[~trips["trip_id"].isin(templates)].assign(template_trip_id="", start_s=-1, exact_times=1)
    new_trips = inst.merge(trips.rename(columns={"trip_id": "template_trip_id"}), on="template_trip_id")
    new_trips["block_id"] = ""
    trips = pd.concat([plain, new_trips[plain.columns]], ignore_index=True)

    tmpl_st = st[st["trip_id"].isin(templates)]
    rows = inst.merge(tmpl_st.rename(columns={"trip_id": "template_trip_id"}), on="template_trip_id")
    shift = rows["start_s"].to_numpy() - rows["template_trip_id"].map(first_dep).to_numpy()
    rows["arrival_time"] = rows["arrival_time"].to_numpy() + shift
    rows["departure_time"] = rows["departure_time"].to_numpy() + shift
    new_st = pd.concat([st[~st["trip_id"].isin(templates)], rows[st.columns]], ignore_index=True)
    new_st = new_st.sort_values(["trip_id", "stop_sequence"], kind="stable").reset_index(drop=True)
    return dataclasses.replace(feed, trips=trips.reset_index(drop=True), stop_times=new_st, frequencies=None)
