from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from its.db import Database
from maps.network import RoadNetwork
from maps.store import load_network


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ITS_DATABASE_URL", db_url)
    monkeypatch.setenv("ITS_DATA_DIR", str(tmp_path / "data"))
    from its.settings import get_settings

    if hasattr(get_settings, "cache_clear"):
        get_settings.cache_clear()
    return tmp_path / "data"


def test_maps_import_osm(cli_env: Path, db_url: str, sample_data: Path) -> None:
    from its.app.cli import app

    result = CliRunner().invoke(app, ["maps", "import", str(sample_data / "osm" / "test.osm.pbf"), "--name", "small"])
    assert result.exit_code == 0, result.output
    assert "network small:" in result.output and "stored" in result.output
    cached = RoadNetwork.load(cli_env / "maps" / "small.npz")
    db = Database(db_url)
    try:
        stored = load_network(db, "small")
    finally:
        db.close()
    assert stored.n_edges == cached.n_edges > 400


def test_maps_import_gtfs_without_db(cli_env: Path, sample_data: Path) -> None:
    from its.app.cli import app

    result = CliRunner().invoke(app, ["maps", "import", "--gtfs", str(sample_data / "gtfs" / "cairns_gtfs.zip"), "--no-store"])
    assert result.exit_code == 0, result.output
    assert RoadNetwork.load(cli_env / "maps" / "cairns_gtfs.npz").n_edges > 300


def test_maps_import_errors(cli_env: Path, tmp_path: Path, sample_data: Path) -> None:
    from its.app.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["maps", "import", str(tmp_path / "none.osm.pbf"), "--no-store"])
    assert result.exit_code == 2 and "none.osm.pbf" in result.output
    result = runner.invoke(app, ["maps", "import", "--no-store"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["maps", "import", str(sample_data / "osm" / "test.osm.pbf"), "--bbox", "1,2", "--no-store"])
    assert result.exit_code == 2 and "bbox" in result.output
