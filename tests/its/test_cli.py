"""Admin commands (users, keys, devices) through the real CLI on a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from its.app.cli import app
from its.settings import get_settings


def test_users_keys_devices_commands(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ITS_DATABASE_URL", db_url)
    monkeypatch.setenv("ITS_MQTT_URL", "mqtt://127.0.0.1:1")
    monkeypatch.setenv("ITS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    run = CliRunner().invoke
    assert run(app, ["users", "create", "dana", "--password", "correct horse"]).exit_code == 0
    bad = run(app, ["users", "create", "eve", "--password", "short"])
    assert bad.exit_code == 2 and "at least 8 characters" in bad.output
    key = run(app, ["keys", "create", "app1"]).output.strip()
    assert key.startswith("its_")
    assert "app1" in run(app, ["keys", "list"]).output
    assert run(app, ["keys", "revoke", key.split("_")[1]]).exit_code == 0
    assert run(app, ["keys", "revoke", "nope"]).exit_code == 1
    assert run(app, ["devices", "add", "bus-1", "--kind", "vehicle"]).exit_code == 0
    assert run(app, ["devices", "add", "x", "--kind", "parking-sensor"]).exit_code == 2
    assert "bus-1\tvehicle\tactive" in run(app, ["devices", "list"]).output
    assert run(app, ["devices", "revoke", "bus-1"]).exit_code == 0
    assert "user bus-1" not in (tmp_path / "broker-auth" / "acl").read_text()
    get_settings.cache_clear()
