"""``its bench assignment`` on a route's first buses: the index and the bare broadcast agree bit for
bit, both are timed in one run, and a bad file is a clear error (the whole-day figures are in
the README)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer
from typer.testing import CliRunner

from telematics.avl import read_avl
from telematics.cli import bench_assignment


def test_bench_times_both_projections_and_they_agree(wmata_dir: Path, tmp_path: Path) -> None:
    avl = read_avl(wmata_dir / "wmata_avl.csv")
    route = avl["route_id"].iloc[0]
    part = pd.read_csv(wmata_dir / "wmata_avl.csv", dtype=str, keep_default_na=False)
    part = part[part["route_id"] == route].head(600)
    part.to_csv(tmp_path / "one_route.csv", index=False)
    app = typer.Typer()
    app.command("assignment")(bench_assignment)
    app.command("other")(lambda: None)
    runner = CliRunner()
    gtfs = str(wmata_dir / "wmata_gtfs.zip")
    result = runner.invoke(app, ["assignment", "--gtfs", gtfs, "--avl", str(tmp_path / "one_route.csv"), "--json"])
    assert result.exit_code == 0, result.output
    r = json.loads(result.output.splitlines()[-1])
    assert r["pings"] == len(part) > 0 and r["paths"] > 0 and r["segments"] >= r["paths"]
    assert r["identical"] is True
    assert r["index_s"] > 0 and r["broadcast_s"] > 0 and r["ratio"] > 0 and r["assignment_s"] > 0
    (tmp_path / "bad.csv").write_text("vehicle_id,timestamp,lat,lon\nbus,not-a-time,1,2\n")
    bad = runner.invoke(app, ["assignment", "--gtfs", gtfs, "--avl", str(tmp_path / "bad.csv")])
    assert bad.exit_code == 2 and "bad.csv" in bad.output
