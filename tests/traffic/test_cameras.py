"""Placing camera counting lines on a stored network: library and ``its traffic place-camera``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from its.db import Database
from maps.store import save_network
from maps.synthetic import grid_network
from traffic.cameras import place_camera_line
from traffic.store import load_camera_links


def _grid(db: Database) -> tuple[float, float]:
    net = grid_network(3, 3, spacing_m=200.0, name="cam-grid")
    save_network(db, net)
    e = int(np.nonzero((net.u == 0) & (net.v == 1))[0][0])  # eastbound edge of the southern street
    mid = net.coords[net.geom_offsets[e]:net.geom_offsets[e + 1]].mean(axis=0)
    return float(mid[1]), float(mid[0])


def test_a_line_goes_to_the_edge_of_its_heading_and_the_reverse(db: Database) -> None:
    lat, lon = _grid(db)
    east = place_camera_line(db, "cam-9", "l1", lat + 0.00005, lon, 90.0)
    west = place_camera_line(db, "cam-9", "l2", lat, lon, 270.0)
    assert east.network == "cam-grid" and (east.edge_in, east.edge_out) == (west.edge_out, west.edge_in)
    links = load_camera_links(db, "cam-grid")
    assert sorted(zip(links.line_id.tolist(), links.direction.tolist(), links.edge.tolist(), strict=True)) == sorted(
        [("l1", "in", east.edge_in), ("l1", "out", east.edge_out), ("l2", "in", west.edge_in), ("l2", "out", west.edge_out)])
    with pytest.raises(ValueError, match="no road"):
        place_camera_line(db, "cam-9", "l3", lat + 0.01, lon, 90.0)
    with pytest.raises(ValueError, match="not stored"):
        place_camera_line(db, "cam-9", "l3", lat, lon, 90.0, network="elsewhere")


def test_cli_places_a_line_and_rejects_bad_input(db: Database, db_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    lat, lon = _grid(db)
    monkeypatch.setenv("ITS_DATABASE_URL", db_url)
    monkeypatch.setenv("ITS_DATA_DIR", str(tmp_path / "data"))
    from its.app.cli import app
    from its.settings import get_settings

    if hasattr(get_settings, "cache_clear"):
        get_settings.cache_clear()
    runner = CliRunner()
    ok = runner.invoke(app, ["traffic", "place-camera", "cam-7", "--line", "north", "--at", f"{lat},{lon}",
                             "--heading", "90"])
    assert ok.exit_code == 0, ok.output
    assert "network cam-grid" in ok.output
    rows = db.fetchall("SELECT direction, lat, lon FROM traffic_camera_links WHERE camera_id = 'cam-7' ORDER BY 1")
    assert [r[0] for r in rows] == ["in", "out"] and rows[0][1:] == pytest.approx((lat, lon))
    bad = runner.invoke(app, ["traffic", "place-camera", "cam-7", "--line", "x", "--at", "north", "--heading", "0"])
    assert bad.exit_code == 2 and "lat,lon" in bad.output
    far = runner.invoke(app, ["traffic", "place-camera", "cam-7", "--line", "x", "--at", "0,0", "--heading", "0"])
    assert far.exit_code == 2 and "no road" in far.output
