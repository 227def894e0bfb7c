"""Decompose the gap between the live prediction-accuracy indicator and ``its eval arrivals``.

Replays the WMATA AVL through the live service path (`ArrivalsService`: JSON messages,
refresh every 30 s of replay time, the live `PredictionSampler`) from a cold start, and
the whole day through the eval (`replay_predictions`), then scores with the one shared
function (`telematics.kpi.prediction_accuracy` via `score_predictions`):

A  live samples against the live detected arrivals (the report's indicator)
B  live samples against the eval's ground truth (offline passings)
C  eval predictions at exactly the sampled pings, and C' the live ones there
D  eval at every ping before UNTIL, D' the eval's whole day (its headline)
E  eval before UNTIL sampled like the live sampler (once per run per 60 s)

Usage: .venv/bin/python -m tests.telematics.live_vs_eval [UNTIL] [SETTLE] [REFRESH_S]
(UNTIL: samples issued before it are scored, ISO Z; SETTLE: the replay goes on to it so
late arrivals are detected). No database needed; about a minute.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from telematics.avl import read_avl
from telematics.config import TelematicsSettings
from telematics.evaluate import (
    _match_runs,
    _trip_bounds,
    replay_predictions,
    score_predictions,
)
from telematics.frequencies import expand_frequencies
from telematics.gtfs import Feed, read_feed, trip_paths
from telematics.service import ArrivalsService

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "avl" / "wmata"
SAMPLE_COLUMNS = ["issued", "agency", "service_date", "trip_id", "stop_id", "stop_sequence", "vehicle_id",
                  "predicted_time", "horizon_s"]
ARRIVAL_COLUMNS = ["agency", "service_date", "trip_id", "stop_sequence", "time", "stop_id", "vehicle_id", "route_id",
                   "sched", "delay_s"]


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def live_replay(feed: Feed, until: str, settle: str, refresh_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Samples issued before ``until`` and passings detected until ``settle`` by the live path."""
    raw = pd.read_csv(DATA / "wmata_avl.csv", dtype=str, keep_default_na=False).sort_values("timestamp", kind="stable")
    service = ArrivalsService(TelematicsSettings(recent_positions_min=0, history_days=0), background=False)
    service.add_agency("wmata", feed)
    passings: list[tuple[object, ...]] = []
    samples: list[tuple[object, ...]] = []
    now, next_refresh = _epoch(raw["timestamp"].iloc[0]), 0.0
    for r in raw[raw["timestamp"] < settle].to_dict("records"):
        t = _epoch(r["timestamp"])
        if t >= next_refresh:
            service.refresh(now)
            if r["timestamp"] < until:
                samples += service._pending_predictions
            passings += service._pending
            service._pending_predictions, service._pending = [], []
            next_refresh = t + refresh_s
        now = t
        payload = {"ts": r["timestamp"], "lat": float(r["lat"]), "lon": float(r["lon"]), "trip_id": r["trip_id"],
                   "start_date": r["start_date"]}
        if r["speed_mps"]:  # the reported speed tells halted vehicles apart, as in the eval
            payload["speed_mps"] = float(r["speed_mps"])
        service._on_json(f"its/v1/vehicles/wmata/{r['vehicle_id']}/position", orjson.dumps(payload))
    service.refresh(now)
    passings += service._pending
    s = pd.DataFrame(samples, columns=SAMPLE_COLUMNS)
    s["issued_s"] = s["issued"].map(lambda d: d.timestamp())
    s["pred_s"] = s["predicted_time"].map(lambda d: d.timestamp())
    s["stop_sequence"] = s["stop_sequence"].astype(int)
    a = pd.DataFrame(passings, columns=ARRIVAL_COLUMNS)
    a["live_truth"] = a["time"].map(lambda d: d.timestamp())
    a["stop_sequence"] = a["stop_sequence"].astype(int)
    return s, a


def main(until: str, settle: str, refresh_s: float) -> None:
    feed = expand_frequencies(read_feed(DATA / "wmata_gtfs.zip"))
    s, a = live_replay(feed, until, settle, refresh_s)
    key = ["service_date", "trip_id", "stop_sequence"]
    s = s.merge(a.groupby(key, as_index=False)["live_truth"].min(), on=key, how="left")
    # the eval's ground truth: passings on the offline match of the whole day
    avl = read_avl(DATA / "wmata_avl.csv")
    paths, bounds = trip_paths(feed), _trip_bounds(feed)
    seq = feed.stop_times["stop_sequence"].to_numpy()
    truth = pd.concat([pd.DataFrame({"vehicle_id": str(avl["vehicle_id"].iloc[run.rows[0]]), "trip_id": run.trip,
                                     "stop_sequence": seq[bounds[run.trip][0]:bounds[run.trip][1]].astype(int),
                                     "eval_truth": run.truth})
                       for run in _match_runs(feed, paths, avl, bounds)])
    first = truth.groupby(["vehicle_id", "trip_id", "stop_sequence"], as_index=False)["eval_truth"].min()
    s = s.merge(first, on=["vehicle_id", "trip_id", "stop_sequence"], how="left")
    cols = replay_predictions(feed, paths, avl)
    row = cols["row"].astype(np.int64)
    ev = pd.DataFrame({"now": cols["now"], "trip_id": feed.stop_times["trip_id"].to_numpy()[row],
                       "stop_sequence": seq[row].astype(int), "eval_pred": cols["pred"], "truth": cols["truth"]})
    s = s.merge(ev.drop_duplicates(["now", "trip_id", "stop_sequence"]).drop(columns="truth"),
                left_on=["issued_s", "trip_id", "stop_sequence"], right_on=["now", "trip_id", "stop_sequence"],
                how="left")
    s["h"] = s["pred_s"] - s["issued_s"]

    def show(name: str, h: pd.Series, e: pd.Series) -> None:
        r = score_predictions(np.asarray(h, float), np.asarray(e, float))
        print(f"{name:58s} n={len(e):7d} within={r['within_windows']} "
              f"by band={list(r['within_by_bucket'].values())} bias={np.mean(e):+.1f} s")  # type: ignore[attr-defined]

    live, evt, at = s["live_truth"].notna(), s["eval_truth"].notna(), s["eval_pred"].notna()
    show("A  live samples vs live arrivals (the indicator)", s["h"][live], (s["live_truth"] - s["pred_s"])[live])
    show("B  live samples vs eval truth", s["h"][evt], (s["eval_truth"] - s["pred_s"])[evt])
    both = live & evt
    print("   live - eval truth of the same passings (s):",
          (s["live_truth"] - s["eval_truth"])[both].describe().round(1).to_dict())
    print("   live - eval prediction at the same ping (s):", (s["pred_s"] - s["eval_pred"])[at].describe().round(1).to_dict())
    m = at & evt
    show("C  eval predictions at the sampled pings vs eval truth", (s["eval_pred"] - s["issued_s"])[m],
         (s["eval_truth"] - s["eval_pred"])[m])
    show("C' live predictions at the same pings vs eval truth", s["h"][m], (s["eval_truth"] - s["pred_s"])[m])
    before = ev[ev["now"] < _epoch(until)]
    show("D  eval, every ping before UNTIL", before["eval_pred"] - before["now"], before["truth"] - before["eval_pred"])
    show("D' eval, every ping of the day (its headline)", ev["eval_pred"] - ev["now"], ev["truth"] - ev["eval_pred"])
    keep = []
    for trip, g in before.groupby("trip_id", sort=False):
        last = -np.inf
        for t in np.unique(g["now"].to_numpy()):
            if t - last >= 60.0:
                keep.append((trip, t))
                last = t
    k = pd.DataFrame(keep, columns=["trip_id", "now"]).merge(before, on=["trip_id", "now"])
    k = k[k["eval_pred"] >= k["now"]]
    show("E  eval before UNTIL, once per run per 60 s", k["eval_pred"] - k["now"], k["truth"] - k["eval_pred"])


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0] if args else "2026-02-16T18:00:00Z", args[1] if len(args) > 1 else "2026-02-16T18:40:00Z",
         float(args[2]) if len(args) > 2 else 30.0)
