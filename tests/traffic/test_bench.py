"""`its bench congestion`: JSON on the last line, network = grid + real OSM extract."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from its.app.cli import app
from maps.osm import import_osm
from maps.synthetic import grid_network


def test_bench_json_counts_grid_plus_osm_edges(sample_data: Path) -> None:
    osm = sample_data / "osm" / "test.osm.pbf"
    result = CliRunner().invoke(app, ["bench", "congestion", "--grid", "30", "--osm", str(osm),
                                      "--routes", "20", "--json"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(last) == {"edges", "update_ms", "route_p99_ms"}
    assert last["edges"] == grid_network(30, 30).n_edges + import_osm(osm).n_edges
    assert last["update_ms"] > 0 and last["route_p99_ms"] > 0
    assert "update" in result.stdout.splitlines()[0]
