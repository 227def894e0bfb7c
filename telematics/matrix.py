"""The degraded-feed matrix: arrivals and trip assignment scored on degraded real AVL.

Each cell (`telematics.degrade.DegradeSpec`) degrades a recorded day (slower pings, no
shapes, trip ids hidden, GPS noise, no speed or bearing, service across midnight) and
replays it as the platform would get it:

* the trips come from the feed when it reports them, else from positions
  (`telematics.position_assignment.assign_positions`, causal as the live service, route-restricted
  when the route is reported), and the predictions follow the trip each ping was given
  (`telematics.evaluate.replay_runs`); the retrospective assignment (each vehicle's whole
  history) is scored beside it;
* the truth is the recorded day itself, undegraded: every stop passing interpolated on the
  smoothed match of the full-rate, noise-free pings of each recorded trip. A prediction for
  the vehicle's recorded trip is scored against that trip's passing of the stop; one made
  for a wrongly assigned trip against the vehicle's next actual passing of that stop (from
  ``MATCH_BEFORE_S`` before the prediction on), and is unscored when the vehicle never
  passed it;
* ``prediction_completeness`` is the share of (ping, stop) pairs that should have had a
  prediction (the stops of the vehicle's recorded trip it actually passed within 30 min
  after the ping) which had one scored against that passing;
* the day is split in time: predictions made and pings received in the last
  ``held_out_share`` of the recorded span are the held-out part (``split.held_out``); the
  rest is ``split.dev``, the only part changes may be judged on.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from telematics.avl import plausible_positions, read_avl
from telematics.completeness import expected_pairs, pair_coverage
from telematics.degrade import DegradeSpec, degrade, parse_spec, shift_service
from telematics.evaluate import (
    HORIZON_S,
    _match_runs,
    _service_start,
    _trip_bounds,
    delay_weight_by_bucket,
    replay_runs,
    run_minute_completeness,
    run_passings,
    score_predictions,
)
from telematics.frequencies import expand_frequencies
from telematics.gtfs import Feed, TripPaths, busiest_day, read_feed, trip_paths
from telematics.gtfs.paths import StopPathFn
from telematics.gtfs.reader import ZipOrFolder
from telematics.gtfs.validate import build_feed
from telematics.ingest import parse_gtfsrt_position
from telematics.position_assignment import assign_positions, turnaround_neighbours
from telematics.simulator import FleetSimulation, simulated_avl

__all__ = [
    "DEFAULT_CELLS",
    "MATCH_BEFORE_S",
    "SUBSET_CELLS",
    "Dataset",
    "avl_from_gtfsrt",
    "cell_label",
    "evaluate_cell",
    "load_datasets",
    "matrix_table",
    "recorded_passings",
]

FloatArray = npt.NDArray[np.float64]
#: A prediction for a wrong trip is matched to the vehicle's first passing of its stop from this long (s) before it.
MATCH_BEFORE_S = 60.0
#: The matrix cells run by default: each degradation alone, with ids given and hidden, then combined.
DEFAULT_CELLS: tuple[str, ...] = (
    "",
    "interval=15", "interval=30", "interval=60", "interval=120",
    "shapes=0", "ids=route", "noise=15", "noise=30", "motion=0", "midnight=1",
    "ids=hidden",
    "ids=hidden,interval=15", "ids=hidden,interval=30", "ids=hidden,interval=60", "ids=hidden,interval=120",
    "ids=hidden,shapes=0", "ids=hidden,noise=15", "ids=hidden,noise=30", "ids=hidden,motion=0",
    "ids=hidden,midnight=1",
    "ids=hidden,interval=120,shapes=0",
    "ids=hidden,interval=120,shapes=0,noise=15,motion=0",
    "ids=hidden,interval=120,shapes=0,noise=15,motion=0,midnight=1",
)
#: A representative subset for CI (seconds on one route).
SUBSET_CELLS: tuple[str, ...] = ("ids=hidden,interval=120,shapes=0", "ids=hidden,midnight=1,noise=15,motion=0")


@dataclass(frozen=True)
class Dataset:
    """A recorded day: its schedule and its positions (`telematics.avl.read_avl` columns)."""

    name: str
    feed: Feed
    avl: pd.DataFrame


def avl_from_gtfsrt(payloads: Iterable[bytes]) -> pd.DataFrame:
    """Positions of GTFS-realtime VehiclePositions snapshots in `read_avl`'s columns.

    Parameters
    ----------
    payloads : iterable of bytes
        Serialised FeedMessages.

    Returns
    -------
    DataFrame
        One row per vehicle and distinct timestamp (a vehicle repeated unchanged in the
        next snapshot is kept once), in time order.
    """
    rows = [r for body in payloads for r in parse_gtfsrt_position("its/v1/vehicles/rt/feed/position/gtfsrt", body)]
    frame = pd.DataFrame({
        "vehicle_id": [r.vehicle_id for r in rows],
        "trip_id": [r.trip_id or "" for r in rows],
        "route_id": [r.route_id or "" for r in rows],
        "start_date": [r.start_date.strftime("%Y%m%d") if r.start_date else "" for r in rows],
        "time_s": [r.time.timestamp() for r in rows],
        "lat": [r.lat for r in rows], "lon": [r.lon for r in rows],
        "speed_mps": [np.nan if r.speed_mps is None else r.speed_mps for r in rows],
        "bearing": [np.nan if r.bearing is None else r.bearing for r in rows],
    }, columns=["vehicle_id", "trip_id", "route_id", "start_date", "time_s", "lat", "lon", "speed_mps", "bearing"])
    frame = frame.drop_duplicates(["vehicle_id", "time_s"])
    frame["line"] = np.arange(len(frame)) + 1
    return frame.sort_values(["time_s", "vehicle_id"], kind="stable").reset_index(drop=True)


class _TripIdRepair:
    """A feed's files where ``stop_times`` names trips ``{trip_id}-{service_id}`` (the shared
    Minneapolis GTFS does): those ids are mapped back to ``trips.txt``'s (a `TableSource`)."""

    def __init__(self, path: Path) -> None:
        self._source = ZipOrFolder(path)

    def has(self, name: str) -> bool:
        return self._source.has(name)

    def read(self, name: str) -> pd.DataFrame:
        frame = self._source.read(name)
        if name == "stop_times.txt":
            trips = self._source.read("trips.txt")
            suffixed = pd.Series(trips["trip_id"].to_numpy(), index=trips["trip_id"] + "-" + trips["service_id"])
            known = frame["trip_id"].isin(trips["trip_id"])
            frame.loc[~known, "trip_id"] = frame.loc[~known, "trip_id"].map(suffixed).fillna(
                frame.loc[~known, "trip_id"])
        return frame


def load_datasets(shared: Path, names: Sequence[str] | None = None) -> tuple[list[Dataset], dict[str, str]]:
    """The shared recorded days with AVL, and why the others are not run.

    Parameters
    ----------
    shared : Path
        The shared data directory (``../shared/data``).
    names : sequence of str, optional
        Only these (``wmata``, ``minneapolis``, ``cairns``; default all three), or
        ``cairns-sim``: the fleet simulator driving Cairns' real shapes on its busiest weekday
        of the feed's first week (random-walk delays, 8 m GPS noise, pings every 30 s;
        simulated, so it scores trip assignment and robustness, not arrivals against real
        running).

    The Minneapolis day is its three VehiclePositions snapshots (about 70 s of 11 buses);
    its GTFS names trips ``{trip_id}-{service_id}`` in ``stop_times.txt``, mapped back on
    reading (the file is not changed).

    Returns
    -------
    datasets : list of Dataset
    skipped : dict of str to str
        Dataset name to the reason it is not run.
    """
    wanted = list(names) if names else ["wmata", "minneapolis", "cairns"]
    out: list[Dataset] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        if name == "wmata":
            base = shared / "avl" / "wmata"
            if (base / "wmata_avl.csv").exists():
                out.append(Dataset(name, read_feed(base / "wmata_gtfs.zip"), read_avl(base / "wmata_avl.csv")))
            else:
                skipped[name] = f"{base} missing"
        elif name == "minneapolis":
            base = shared / "avl" / "minneapolis"
            snapshots = sorted(base.glob("VehiclePositions_*.pb"))
            if snapshots and (base / "gtfs.zip").exists():
                out.append(Dataset(name, build_feed(_TripIdRepair(base / "gtfs.zip")),
                                   avl_from_gtfsrt(p.read_bytes() for p in snapshots)))
            else:
                skipped[name] = f"{base} missing"
        elif name == "cairns":
            skipped[name] = ("a schedule only (gtfs/cairns_gtfs.zip): no recorded AVL to degrade"
                             " (cairns-sim: a simulated day on it)")
        elif name == "cairns-sim":
            feed_zip = shared / "gtfs" / "cairns_gtfs.zip"
            if feed_zip.exists():
                feed = read_feed(feed_zip)
                out.append(Dataset(name, feed, simulated_avl(FleetSimulation(feed, busiest_day(feed), seed=1,
                                                                             gps_noise_m=8.0), 30.0)))
            else:
                skipped[name] = f"{feed_zip} missing"
        else:
            skipped[name] = "unknown dataset"
    return out, skipped


def recorded_passings(feed: Feed, paths: TripPaths, avl: pd.DataFrame) -> pd.DataFrame:
    """Every stop passing of the recorded trips (the truth), one row per passing.

    Returns
    -------
    DataFrame
        ``vehicle_id``, ``trip_id``, ``row`` (stop-time row of the stop), ``stop_id``,
        ``day0`` (epoch s of the service day), ``run`` (index of the recorded run) and
        ``time_s`` (interpolated passing, epoch s); passings the pings do not bracket are
        left out.
    """
    bounds = _trip_bounds(feed)
    runs = _match_runs(feed, paths, avl, bounds)
    _, passings = run_passings(runs, bounds, len(avl))
    vehicle_of_run = np.array([str(avl["vehicle_id"].iloc[r.rows[0]]) for r in runs] or [""], dtype=object)
    passings["vehicle_id"] = vehicle_of_run[passings["run"].to_numpy()].astype(str)
    passings["trip_id"] = feed.stop_times["trip_id"].to_numpy(dtype=str)[passings["row"].to_numpy()]
    passings["stop_id"] = feed.stop_times["stop_id"].to_numpy(dtype=str)[passings["row"].to_numpy()]
    return passings


def _truth_of_predictions(cols: dict[str, FloatArray], avl: pd.DataFrame, correct: npt.NDArray[np.bool_],
                          truth_day0: FloatArray, passings: pd.DataFrame, stop_ids: npt.NDArray[np.str_]
                          ) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Actual arrival (epoch s, NaN unknown) and passing index (-1 none) of each prediction."""
    n = len(cols["now"])
    ping = cols["ping"].astype(np.int64)
    frame = pd.DataFrame({"vehicle_id": avl["vehicle_id"].to_numpy(dtype=str)[ping],
                          "row": cols["row"].astype(np.int64), "stop_id": stop_ids[cols["row"].astype(np.int64)],
                          "day0": truth_day0[ping], "now": cols["now"], "k": np.arange(n)})
    events = passings.assign(event=np.arange(len(passings)))
    truth = np.full(n, np.nan)
    event = np.full(n, -1, dtype=np.int64)
    right = frame[correct[ping]]
    hit = right.merge(events[["vehicle_id", "row", "day0", "time_s", "event"]], on=["vehicle_id", "row", "day0"],
                      how="inner")
    truth[hit["k"].to_numpy()] = hit["time_s"].to_numpy()
    event[hit["k"].to_numpy()] = hit["event"].to_numpy()
    wrong = frame[~correct[ping]].assign(t=lambda f: f["now"] - MATCH_BEFORE_S).sort_values("t")
    if len(wrong) and len(events):
        ev = events.sort_values("time_s")
        got = pd.merge_asof(wrong, ev[["vehicle_id", "stop_id", "time_s", "event"]], left_on="t", right_on="time_s",
                            by=["vehicle_id", "stop_id"], direction="forward")
        found = got["event"].notna().to_numpy()
        truth[got["k"].to_numpy()[found]] = got["time_s"].to_numpy()[found]
        event[got["k"].to_numpy()[found]] = got["event"].to_numpy()[found].astype(np.int64)
    return truth, event


def _split_scores(mask_pred: npt.NDArray[np.bool_], horizon: FloatArray, truth: FloatArray, cols: dict[str, FloatArray],
                  assigned_ok: npt.NDArray[np.bool_], mask_ping: npt.NDArray[np.bool_], covered: npt.NDArray[np.bool_],
                  expected_ping_mask: npt.NDArray[np.bool_]) -> dict[str, object]:
    """Scores of one part of the day (predictions made and pings received in it)."""
    model = score_predictions(horizon[mask_pred], (truth - cols["pred"])[mask_pred])
    delay = score_predictions(horizon[mask_pred], (truth - cols["delayprop"])[mask_pred])
    expected = int(expected_ping_mask.sum())
    return {"predictions": int(mask_pred.sum()), "within_windows": model["within_windows"], "mae_s": model["mae_s"],
            "eta_benchmark": model["eta_benchmark"],
            "delay_propagation": {"within_windows": delay["within_windows"], "mae_s": delay["mae_s"],
                                  "eta_benchmark": delay["eta_benchmark"]},
            "assigned_trip_accuracy": _share(assigned_ok[mask_ping]),
            "prediction_completeness": round(float(covered[expected_ping_mask].mean()), 4) if expected else None}


def evaluate_cell(dataset: Dataset, spec: DegradeSpec | str, *, vehicles: Sequence[str] | None = None,
                  held_out_share: float = 0.2, paths_cache: dict[tuple[int, bool, float], TripPaths] | None = None,
                  stop_path: StopPathFn | None = None) -> dict[str, object]:
    """Score one matrix cell on one recorded day.

    Parameters
    ----------
    dataset : Dataset
        The recorded day.
    spec : DegradeSpec or str
        The cell (`telematics.degrade.parse_spec` text accepted).
    vehicles : sequence of str, optional
        Restrict to these vehicles (fast subsets).
    held_out_share : float
        Share of the recorded time span, at its end, scored apart as held out.
    paths_cache : dict, optional
        Reused paths per (feed, shapes, shift) between cells of one dataset.
    stop_path : callable, optional
        Builds the paths of trips without a shape (a road network's,
        `telematics.road_paths.RoadStopPaths`); default straight lines.

    Returns
    -------
    dict
        ``dataset``, ``cell``, ``pings``, ``median_interval_s``, ``trips_from`` (reported,
        route+positions, positions), the whole day's ``predictions``, ``within_windows``,
        ``within_by_bucket``, ``mae_s``, ``baselines`` (schedule, delay propagation),
        ``worse_than_delay_propagation`` (buckets whose MAE exceeds the baseline's),
        ``assigned_trip_accuracy`` (share of pings given their recorded trip and service
        day: the reported trips when given, else the live service's causal choices, which the
        predictions follow), ``positions_assignment`` (the same share with the trip ids hidden,
        ``live`` causal and ``retrospective``; ``live_turnaround_either`` also counts right the
        block's other trip of a turnaround given at its terminal,
        `telematics.position_assignment.turnaround_neighbours`), ``prediction_completeness``, ``split``
        (``dev``, ``held_out``, ``held_out_from``), ``positions_left_out`` (recorded fixes the
        live service would not apply either, `telematics.avl.plausible_positions`) and ``seconds``.
    """
    started = time.perf_counter()
    spec = parse_spec(spec) if isinstance(spec, str) else spec
    cache = {} if paths_cache is None else paths_cache
    recorded = dataset.avl
    if vehicles is not None:
        recorded = recorded[recorded["vehicle_id"].isin(list(vehicles))].reset_index(drop=True)
    feed0 = expand_frequencies(dataset.feed)
    recorded, *left_out = plausible_positions(recorded, feed0)  # what the live service applies
    avl, feed, shift = degrade(recorded, feed0, spec)
    truth_avl, truth_feed = shift_service(recorded, feed0, shift)

    def paths_of(f: Feed, shapes: bool) -> TripPaths:
        key = (id(dataset.feed), shapes, shift)
        if key not in cache:
            cache[key] = trip_paths(f, stop_path)
        return cache[key]

    truth_paths = paths_of(truth_feed, True)
    paths = paths_of(feed, spec.shapes)
    passings = recorded_passings(truth_feed, truth_paths, truth_avl)

    truth_trip = avl["truth_trip_id"].to_numpy(dtype=str)
    truth_day0 = _service_start(avl.assign(start_date=avl["truth_start_date"]), feed.timezone)
    hidden = avl.assign(trip_id="") if spec.ids == "route" else avl.assign(trip_id="", route_id="", start_date="")
    inferred = assign_positions(feed, paths, hidden, retrospective=True)
    assert inferred.retro_trips is not None and inferred.retro_day_start_s is not None
    live_ok = (inferred.trips == truth_trip) & (inferred.day_start_s == truth_day0) & (truth_trip != "")
    retro_ok = (inferred.retro_trips == truth_trip) & (inferred.retro_day_start_s == truth_day0) & (truth_trip != "")
    if spec.ids == "given":
        trips, day0 = avl["trip_id"].to_numpy(dtype=str), _service_start(avl, feed.timezone)
    else:  # the live service's causal choices
        trips, day0 = inferred.trips, inferred.day_start_s
    assigned_ok = (trips == truth_trip) & (day0 == truth_day0) & (truth_trip != "")
    # either trip of a turnaround right, at its terminal (agencies label those pings differently)
    live_either = live_ok | turnaround_neighbours(truth_feed, truth_paths, avl, truth_trip, truth_day0,
                                                  inferred.trips, inferred.day_start_s)

    cols = replay_runs(feed, paths, avl, (), trips, day0)
    stop_ids = feed.stop_times["stop_id"].to_numpy(dtype=str)
    truth, event = _truth_of_predictions(cols, avl, assigned_ok, truth_day0, passings, stop_ids)
    horizon = cols["pred"] - cols["now"]
    keep = np.isfinite(truth) & (horizon <= HORIZON_S)
    cols = {k: v[keep] for k, v in cols.items()}
    truth, event, horizon = truth[keep], event[keep], horizon[keep]

    # completeness: (ping, passing) pairs of the ping's recorded run within the horizon
    run_of = _run_of_pings(avl, truth_trip, truth_day0, passings)
    exp_ping, exp_event = expected_pairs(avl["time_s"], run_of, passings["run"], passings["time_s"], HORIZON_S)
    covered = pair_coverage(exp_ping, exp_event, cols["ping"].astype(np.int64), event)

    t_all = truth_avl["time_s"].to_numpy(dtype=np.float64)
    cutoff = float(t_all.min() + (1.0 - held_out_share) * (t_all.max() - t_all.min())) if len(t_all) else 0.0
    ping_t = avl["time_s"].to_numpy(dtype=np.float64)
    whole = score_predictions(horizon, truth - cols["pred"])
    baselines = {name: {k: v for k, v in score_predictions(horizon, truth - cols[col]).items()
                        if k in ("within_windows", "mae_s", "eta_benchmark")}
                 for name, col in (("schedule", "sched"), ("delay_propagation", "delayprop"))}
    mae = whole["mae_s"]
    base_mae = baselines["delay_propagation"]["mae_s"]
    assert isinstance(mae, dict) and isinstance(base_mae, dict)
    worse = [b for b in mae if mae[b] is not None and base_mae[b] is not None and mae[b] > base_mae[b]]
    gaps = _median_interval(avl)
    result: dict[str, object] = {
        "dataset": dataset.name, "cell": spec.label, "pings": len(avl), "median_interval_s": gaps,
        "trips_from": {"given": "reported", "route": "route+positions", "hidden": "positions"}[spec.ids],
        "predictions": len(truth), **whole, "baselines": baselines, "worse_than_delay_propagation": worse,
        "assigned_trip_accuracy": _share(assigned_ok), "path_sources": paths.source_counts(),
        "delay_weight": delay_weight_by_bucket(horizon, cols["delay_weight"]) if len(horizon) else {},
        "positions_assignment": {"live": _share(live_ok), "retrospective": _share(retro_ok),
                                 "live_turnaround_either": _share(live_either)},
        "positions_left_out": dict(zip(("repeated", "area", "speed"), left_out, strict=True)),
    }
    result["prediction_completeness"] = round(float(covered.mean()), 4) if len(covered) else None
    pred_run = np.where(event >= 0, passings["run"].to_numpy(dtype=np.int64)[np.maximum(event, 0)], -1)
    result["trip_minute_completeness"] = run_minute_completeness(
        passings, pred_run, cols["now"], int(passings["run"].max()) + 1 if len(passings) else 0)
    exp_t = ping_t[exp_ping]
    result["split"] = {
        "held_out_from": pd.Timestamp(round(cutoff - shift), unit="s", tz="UTC").isoformat(),
        **{        part: {**_split_scores(keep_pred, horizon, truth, cols, assigned_ok, keep_ping, covered, keep_exp),
               "positions_assignment": {"live": _share(live_ok[keep_ping]),
                                        "retrospective": _share(retro_ok[keep_ping]),
                                        "live_turnaround_either": _share(live_either[keep_ping])}}
        for part, keep_pred, keep_ping, keep_exp in (
            ("dev", cols["now"] < cutoff, ping_t < cutoff, exp_t < cutoff),
            ("held_out", cols["now"] >= cutoff, ping_t >= cutoff, exp_t >= cutoff))}}
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def _share(ok: npt.NDArray[np.bool_]) -> float | None:
    """Share of True (4 decimals), None when empty."""
    return round(float(ok.mean()), 4) if len(ok) else None


def _median_interval(avl: pd.DataFrame) -> float | None:
    """Median time (s) between successive pings of one vehicle."""
    frame = avl[["vehicle_id", "time_s"]].sort_values(["vehicle_id", "time_s"], kind="stable")
    gaps = frame.groupby("vehicle_id", sort=False)["time_s"].diff().dropna()
    return round(float(gaps.median()), 1) if len(gaps) else None


def _run_of_pings(avl: pd.DataFrame, truth_trip: npt.NDArray[np.str_], truth_day0: FloatArray,
                  passings: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Recorded run (``recorded_passings``'s ``run``) of each ping, -1 when none."""
    runs = passings.drop_duplicates("run")
    keys = pd.Series(runs["run"].to_numpy(), index=pd.MultiIndex.from_arrays([
        runs["vehicle_id"].to_numpy(dtype=str), runs["trip_id"].to_numpy(dtype=str), runs["day0"].to_numpy()]))
    keys = keys[~keys.index.duplicated()]
    index = pd.MultiIndex.from_arrays([avl["vehicle_id"].to_numpy(dtype=str), truth_trip, truth_day0])
    return keys.reindex(index).fillna(-1).to_numpy(dtype=np.int64)


def _bench(scores: dict[str, object]) -> object:
    """The ETA Accuracy Benchmark score of a result (``-`` when undefined)."""
    bench = scores.get("eta_benchmark")
    score = bench.get("score") if isinstance(bench, dict) else None
    return "-" if score is None else score


def cell_label(cell: str) -> str:
    """Short column text of a `DegradeSpec.label`: only what differs from the undegraded feed."""
    base = parse_spec("").label.split(",")
    parts = [p for p, b in zip(cell.split(","), base, strict=True) if p != b]
    return ", ".join(parts) or "as recorded"


def matrix_table(results: Sequence[dict[str, object]]) -> str:
    """Markdown table of matrix results (one row per dataset and cell).

    Columns: the trips the predictions follow, within the MBTA windows, the ETA Accuracy
    Benchmark score (model / delay propagation; held out in brackets), trip assignment
    from positions (live causal, live with either trip of a turnaround right at its terminal, and
    retrospective), prediction completeness (held-out
    figures in brackets), MAE per horizon bucket as ``model / delay propagation`` (s) and
    the buckets where the model is worse than delay propagation.
    """
    head = ("| dataset | cell | ping s | trips from | within (held out) | ETA benchmark (held out) "
            "| assignment live (held out) | live, either trip at a turnaround "
            "| retrospective (held out) | completeness | MAE 0-3 | MAE 3-6 | MAE 6-12 | MAE 12-30 "
            "| worse than delay prop. |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    lines = []
    for r in results:
        mae, base, split, assign = r["mae_s"], r["baselines"], r["split"], r["positions_assignment"]
        assert isinstance(mae, dict) and isinstance(base, dict) and isinstance(split, dict) and isinstance(assign, dict)
        dmae = base["delay_propagation"]["mae_s"]
        held = split["held_out"]
        buckets = " | ".join(f"{mae[b]} / {dmae[b]}" for b in mae)
        worse = ", ".join(r["worse_than_delay_propagation"]) or "none"  # type: ignore[arg-type]
        lines.append(
            f"| {r['dataset']} | {cell_label(str(r['cell']))} | {r['median_interval_s']} | {r['trips_from']} "
            f"| {r['within_windows']} ({held['within_windows']}) "
            f"| {_bench(r)} / {_bench(base['delay_propagation'])} ({_bench(held)}) "
            f"| {assign['live']} ({held['positions_assignment']['live']}) "
            f"| {assign.get('live_turnaround_either', '-')} "
            f"| {assign['retrospective']} ({held['positions_assignment']['retrospective']}) "
            f"| {r['prediction_completeness']} ({held['prediction_completeness']}) | {buckets} | {worse} |")
    return head + "\n".join(lines) + "\n"
