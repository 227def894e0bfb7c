"""`its eval congestion`: the issue's JSON on the real Los-loop data, and clear input errors."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from its.app.cli import app
from traffic.evaluate import evaluate_files
from traffic.learned import lad_batched
from traffic.segment_graph import parse_timestamps

runner = CliRunner()


@pytest.mark.eval
@pytest.mark.slow  # the boosted default model: minutes of LightGBM fits on one core
def test_cli_prints_issue_json_last_on_losloop(real_losloop: Path) -> None:
    losloop = real_losloop
    args = ["eval", "congestion", "--segments", str(losloop / "segments.csv"),
            "--adjacency", str(losloop / "adjacency.csv"), "--speeds", str(losloop / "speeds.csv"),
            "--train-days", "3", "--observed-frac", "0.5", "--seed", "0", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"timestamps", "hidden", "mae_kmh", "baselines"}
    assert set(last["baselines"]) == {"free_flow", "historical"}
    assert last["timestamps"] == 288  # the 4th day, 5-min steps
    assert last["hidden"] == 288 * (207 - round(0.5 * 207))
    # the issue's targets: >= 25 % below historical and >= 50 % below free_flow (2.717 vs 2.747 measured)
    assert last["mae_kmh"] <= 0.75 * last["baselines"]["historical"]
    assert last["mae_kmh"] <= 0.5 * last["baselines"]["free_flow"], last
    # the default model (trees over the linear model) beats the linear model, which beats graph smoothing
    mae = {"boosted": last["mae_kmh"]}
    for model in ("linear", "smoothing"):
        other = runner.invoke(app, [*args, "--model", model])
        assert other.exit_code == 0, other.output
        mae[model] = json.loads(other.stdout.strip().splitlines()[-1])["mae_kmh"]
    assert mae["boosted"] < 0.97 * mae["linear"] and mae["linear"] < 0.95 * mae["smoothing"], mae
    bad = runner.invoke(app, [*args, "--model", "kriging"])
    assert bad.exit_code == 2 and "model must be one of boosted, linear, smoothing" in bad.output


def test_separate_train_file_gives_the_same_result_as_the_day_split(losloop: Path, tmp_path: Path) -> None:
    lines = (losloop / "speeds.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    day4 = [r for r in rows if r.startswith("2012-03-04")]
    other = [r for r in rows if not r.startswith("2012-03-04")]
    (tmp_path / "test.csv").write_text("\n".join([header, *day4]) + "\n")
    (tmp_path / "train.csv").write_text("\n".join([header, *other]) + "\n")
    split = evaluate_files(losloop / "segments.csv", losloop / "adjacency.csv", losloop / "speeds.csv",
                           train_days=3, seed=1, model="linear")
    files = evaluate_files(losloop / "segments.csv", losloop / "adjacency.csv", tmp_path / "test.csv",
                           train=tmp_path / "train.csv", seed=1, model="linear")
    assert files.to_json() == split.to_json()


def test_bad_speed_names_file_line_and_field(losloop: Path, tmp_path: Path) -> None:
    for name in ("segments.csv", "adjacency.csv"):
        shutil.copy(losloop / name, tmp_path / name)
    lines = (losloop / "speeds.csv").read_text().splitlines()[:2000]
    lines[5] = lines[5].rsplit(",", 1)[0] + ",fast"
    bad = tmp_path / "speeds.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"speeds\.csv: line 6: field speed_kmh: not a number: 'fast'"):
        evaluate_files(tmp_path / "segments.csv", tmp_path / "adjacency.csv", bad)
    result = runner.invoke(app, ["eval", "congestion", "--segments", str(tmp_path / "segments.csv"),
                                 "--adjacency", str(tmp_path / "adjacency.csv"), "--speeds", str(bad)])
    assert result.exit_code == 2 and "line 6" in result.output


def test_unknown_segment_in_adjacency_is_reported(losloop: Path, tmp_path: Path) -> None:
    shutil.copy(losloop / "segments.csv", tmp_path / "segments.csv")
    first = (losloop / "segments.csv").read_text().splitlines()[1].split(",")[0]  # real: 773869
    (tmp_path / "adjacency.csv").write_text(f"from_segment,to_segment,weight\n{first},999,0.5\n")
    with pytest.raises(ValueError, match=r"adjacency\.csv: line 2: field to_segment: unknown segment '999'"):
        evaluate_files(tmp_path / "segments.csv", tmp_path / "adjacency.csv", losloop / "speeds.csv")


@pytest.mark.eval
def test_references_show_the_free_flow_target_is_below_full_information_predictors(real_losloop: Path) -> None:
    losloop = real_losloop
    result = evaluate_files(losloop / "segments.csv", losloop / "adjacency.csv", losloop / "speeds.csv",
                            train_days=3, references=True, model="linear")
    ref = result.references
    assert set(ref) == {"linear_full_past", "linear_observed_past", "persistence_full_past", "two_sided_mean",
                        "two_sided_median", "noise_floor"}
    target = 0.5 * result.free_flow_mae_kmh
    # the estimator (even with the linear per-segment model alone) beats the best temporal-only causal reference under the
    # methodology; given every earlier value (the methodology hides half), a linear predictor fitted on
    # TRAIN beats persistence, yet stays above the target; so does non-causal interpolation
    assert result.mae_kmh < ref["linear_observed_past"] < ref["persistence_full_past"]
    assert ref["linear_full_past"] < ref["persistence_full_past"]
    assert ref["linear_full_past"] > target and ref["two_sided_mean"] > target
    assert ref["noise_floor"] < ref["two_sided_median"] < ref["two_sided_mean"]
    # given every earlier value, the temporal-only linear reference beats its own version under the methodology
    assert ref["linear_full_past"] < ref["linear_observed_past"]
    out = result.to_json()
    assert set(out["references"]) == set(ref) and "reference linear_full_past" in result.summary()


# --- hostile inputs a new city could hand us: a clear error naming file, line and field, or a sound run ---

def _city(losloop: Path, folder: Path, n: int = 8) -> dict[str, pd.DataFrame]:
    """The first ``n`` Los-loop segments over the first two days, as text tables."""
    seg = pd.read_csv(losloop / "segments.csv", dtype=str).iloc[:n]
    ids = set(seg["segment_id"])
    adj = pd.read_csv(losloop / "adjacency.csv", dtype=str)
    adj = adj[adj["from_segment"].isin(ids) & adj["to_segment"].isin(ids)]
    sp = pd.read_csv(losloop / "speeds.csv", dtype=str)
    sp = sp[sp["segment_id"].isin(ids) & (sp["timestamp"] < "2012-03-03")]
    return {"segments": seg, "adjacency": adj, "speeds": sp}


def _write(folder: Path, tables: dict[str, pd.DataFrame], **csv: Any) -> tuple[Path, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        table.to_csv(folder / f"{name}.csv", index=False, **csv)
    return folder / "segments.csv", folder / "adjacency.csv", folder / "speeds.csv"


def _set(tables: dict[str, pd.DataFrame], name: str, row: int, column: str, value: str) -> dict[str, pd.DataFrame]:
    out = dict(tables)
    out[name] = tables[name].copy()
    out[name].iloc[row, out[name].columns.get_loc(column)] = value
    return out


def _stamps(tables: dict[str, pd.DataFrame], convert: Callable[[pd.Series], pd.Series]) -> dict[str, pd.DataFrame]:
    sp = tables["speeds"].copy()
    sp["timestamp"] = convert(pd.to_datetime(sp["timestamp"], format="ISO8601"))
    return {**tables, "speeds": sp}


HOSTILE_ERRORS: list[tuple[str, Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]], str]] = [
    ("empty speed", lambda t: _set(t, "speeds", 3, "speed_kmh", ""),
     r"speeds\.csv: line 5: field speed_kmh: empty \(leave out the row of a missing reading\)"),
    ("NaN speed", lambda t: _set(t, "speeds", 3, "speed_kmh", "NaN"), r"speeds\.csv: line 5: field speed_kmh: not a number"),
    ("negative speed", lambda t: _set(t, "speeds", 3, "speed_kmh", "-5"),
     r"speeds\.csv: line 5: field speed_kmh: -5 km/h not in \[0, 300\]"),
    ("absurd speed", lambda t: _set(t, "speeds", 3, "speed_kmh", "900"),
     r"speeds\.csv: line 5: field speed_kmh: 900 km/h not in \[0, 300\]"),
    ("segment absent from segments.csv", lambda t: _set(t, "speeds", 3, "segment_id", "999999"),
     r"speeds\.csv: line 5: field segment_id: unknown segment '999999'"),
    ("adjacency names an unknown segment", lambda t: _set(t, "adjacency", 0, "from_segment", "424242"),
     r"adjacency\.csv: line 2: field from_segment: unknown segment '424242'"),
    ("weight 0", lambda t: _set(t, "adjacency", 0, "weight", "0"), r"adjacency\.csv: line 2: field weight: 0\.0 not in \(0, 1\]"),
    ("weight above 1", lambda t: _set(t, "adjacency", 0, "weight", "1.5"), r"adjacency\.csv: line 2: field weight: 1\.5"),
    ("latitude out of range", lambda t: _set(t, "segments", 1, "lat", "134.5"), r"segments\.csv: line 3: field lat: 134\.5 deg"),
    ("a timestamp that is none", lambda t: _set(t, "speeds", 9, "timestamp", "2012-03-01 noon"),
     r"speeds\.csv: line 11: field timestamp: not ISO 8601"),
    ("epoch in milliseconds", lambda t: _set(t, "speeds", 0, "timestamp", "1330588800000"), r"speeds\.csv: line 2: field timestamp"),
    ("rows with and without offset", lambda t: _set(t, "speeds", 0, "timestamp", "2012-03-01T00:00:00"),
     r"speeds\.csv: line 2: field timestamp: .*mixes rows with and without an offset"),
    ("one reading given twice, differently",
     lambda t: {**t, "speeds": pd.concat([t["speeds"], t["speeds"].iloc[:1].assign(speed_kmh="10")])},
     r"speeds\.csv: line 2: field speed_kmh: .* but line \d+ gives 10 km/h for the same timestamp and segment"),
    ("only a header", lambda t: {**t, "speeds": t["speeds"].iloc[:0]}, r"speeds\.csv: no rows \(only a header\)"),
    ("no segment", lambda t: {**t, "segments": t["segments"].iloc[:0], "adjacency": t["adjacency"].iloc[:0]},
     r"segments\.csv: no segments"),
    ("a graph of 1 segment", lambda t: {
        "segments": t["segments"].iloc[:1], "adjacency": t["adjacency"].iloc[:0],
        "speeds": t["speeds"][t["speeds"]["segment_id"] == t["segments"]["segment_id"].iloc[0]]},
     "the graph has 1 segment"),
    ("a single day", lambda t: {**t, "speeds": t["speeds"][t["speeds"]["timestamp"] < "2012-03-02"]},
     "cover 1 local calendar day"),
]


@pytest.mark.parametrize(("case", "spoil", "message"), HOSTILE_ERRORS, ids=[c[0] for c in HOSTILE_ERRORS])
def test_hostile_input_is_refused_naming_file_line_and_field(
        losloop: Path, tmp_path: Path, case: str,
        spoil: Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]], message: str) -> None:
    segments, adjacency, speeds = _write(tmp_path, spoil(_city(losloop, tmp_path)))
    with pytest.raises(ValueError, match=message):
        evaluate_files(segments, adjacency, speeds, model="linear")
    result = runner.invoke(app, ["eval", "congestion", "--segments", str(segments), "--adjacency", str(adjacency),
                                 "--speeds", str(speeds), "--model", "linear"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output


def test_broken_files_are_refused_with_their_name(losloop: Path, tmp_path: Path) -> None:
    segments, adjacency, speeds = _write(tmp_path, _city(losloop, tmp_path))
    speeds.write_bytes(b"")
    with pytest.raises(ValueError, match=r"speeds\.csv: empty file"):
        evaluate_files(segments, adjacency, speeds)
    speeds.write_bytes(b"timestamp,segment_id,speed_kmh\n\xe9t\xe9,1,2\n")
    with pytest.raises(ValueError, match=r"speeds\.csv: line 2: not UTF-8"):
        evaluate_files(segments, adjacency, speeds)
    speeds.unlink()
    with pytest.raises(ValueError, match=r"speeds\.csv: file not found"):
        evaluate_files(segments, adjacency, speeds)


def test_hostile_but_valid_inputs_run_and_agree(losloop: Path, tmp_path: Path) -> None:
    city = _city(losloop, tmp_path)
    base = evaluate_files(*_write(tmp_path / "base", city), model="linear").to_json()
    # shuffled rows, BOM + CRLF, numeric-looking ids kept as text: the same evaluation
    shuffled = {k: v.sample(frac=1.0, random_state=1) for k, v in city.items()}
    assert evaluate_files(*_write(tmp_path / "shuffled", shuffled), model="linear").to_json()["hidden"] == base["hidden"]
    bom = tmp_path / "bom"
    bom.mkdir()
    for name, table in city.items():
        (bom / f"{name}.csv").write_bytes(b"\xef\xbb\xbf" + table.to_csv(index=False, lineterminator="\r\n").encode())
    assert evaluate_files(bom / "segments.csv", bom / "adjacency.csv", bom / "speeds.csv", model="linear").to_json() == base
    rename = {s: f"{i:03d}" for i, s in enumerate(city["segments"]["segment_id"])}
    zeros = {"segments": city["segments"].assign(segment_id=city["segments"]["segment_id"].map(rename)),
             "adjacency": city["adjacency"].assign(from_segment=city["adjacency"]["from_segment"].map(rename),
                                                   to_segment=city["adjacency"]["to_segment"].map(rename)),
             "speeds": city["speeds"].assign(segment_id=city["speeds"]["segment_id"].map(rename))}
    assert evaluate_files(*_write(tmp_path / "zeros", zeros), model="linear").to_json() == base
    # other timestamp spellings of the same instants: Z and Unix seconds (UTC days), another offset
    zulu = evaluate_files(*_write(tmp_path / "zulu", _stamps(city, lambda t: t.dt.tz_convert("UTC").dt.strftime(
        "%Y-%m-%dT%H:%M:%SZ"))), model="linear").to_json()
    epoch = evaluate_files(*_write(tmp_path / "epoch", _stamps(city, lambda t: t.map(lambda x: str(int(x.timestamp()))))),
                           model="linear").to_json()
    assert zulu == epoch and zulu["timestamps"] == 96  # the last UTC day holds the last 8 local hours
    colon = _stamps(city, lambda t: t.map(lambda x: x.isoformat()))  # -08:00
    assert evaluate_files(*_write(tmp_path / "colon", colon), model="linear").to_json() == base
    # readings every 15 min instead of 5
    every15 = {**city, "speeds": city["speeds"][city["speeds"]["timestamp"].str[14:16].isin(["00", "15", "30", "45"])]}
    assert evaluate_files(*_write(tmp_path / "every15", every15), model="linear").timestamps == 96
    # a segment without neighbours, no adjacency at all, a segment without any reading, 2 segments
    first = city["segments"]["segment_id"].iloc[0]
    alone = {**city, "adjacency": city["adjacency"][(city["adjacency"]["from_segment"] != first)
                                                    & (city["adjacency"]["to_segment"] != first)]}
    silent = {**city, "speeds": city["speeds"][city["speeds"]["segment_id"] != first]}
    two = city["segments"].iloc[:2]
    pair = {"segments": two, "adjacency": city["adjacency"].iloc[:0],
            "speeds": city["speeds"][city["speeds"]["segment_id"].isin(two["segment_id"])]}
    for name, tables in (("alone", alone), ("none", {**city, "adjacency": city["adjacency"].iloc[:0]}),
                         ("silent", silent), ("pair", pair)):
        for model in ("linear", "smoothing"):
            result = evaluate_files(*_write(tmp_path / name, tables), model=model)
            assert result.hidden > 0 and np.isfinite(result.mae_kmh), (name, model)


def test_learned_models_need_some_history(losloop: Path, tmp_path: Path) -> None:
    city = _city(losloop, tmp_path)
    sp = city["speeds"]
    hours = sp[sp["timestamp"] < "2012-03-01T01"]  # 12 timestamps of history
    train = tmp_path / "train.csv"
    hours.to_csv(train, index=False)
    segments, adjacency, speeds = _write(tmp_path, {**city, "speeds": sp[sp["timestamp"] >= "2012-03-02"]})
    with pytest.raises(ValueError, match=r"history .* 12 timestamps; --model boosted learns from at least 24"):
        evaluate_files(segments, adjacency, speeds, train=train)
    assert evaluate_files(segments, adjacency, speeds, train=train, model="smoothing").hidden > 0


def test_parse_timestamps_spellings() -> None:
    stamps = np.array(["2012-03-01T00:00:00-0800", "2012-03-01T08:05:00Z", "1330589100", "2012-03-01T13:40:00+05:30"])
    epoch, bad, offset = parse_timestamps(stamps)
    assert not len(bad) and offset == -8 * 3600
    assert epoch.tolist() == [1330588800.0, 1330589100.0, 1330589100.0, 1330589400.0]
    epoch, bad, offset = parse_timestamps(np.array(["2012-03-01T00:00:00", "2012-03-01T00:05:00", "noon", "123"]))
    assert bad.tolist() == [2, 3] and offset == 0 and epoch[1] - epoch[0] == 300


def test_lad_fit_of_a_segment_without_rows_is_solvable() -> None:
    a = np.zeros((2, 5, 3))
    a[0] = np.random.default_rng(0).normal(size=(5, 3))
    coef = lad_batched(a, np.ones((2, 5)), ridge=1.0)
    assert np.isfinite(coef).all() and np.allclose(coef[1], 0.0)
