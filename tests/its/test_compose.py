"""docker-compose.yml, read: coherent services and real commands (tests/deploy/test_compose_run.py
runs it as local processes)."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from typer.main import get_command

from its.app.cli import app

REPO = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_every_service_with_healthy_dependencies() -> None:
    services = _compose()["services"]
    assert {"db", "broker", "migrate", "api", "collector", "video", "demo-feed", "simulator"} <= set(services)
    assert "traffic" not in services  # the congestion estimator runs inside the API (`its serve`)
    assert "timescale" in services["db"]["image"]
    assert services["simulator"]["profiles"] == ["demo"]
    for name in ("db", "broker", "api", "collector", "video"):
        assert "healthcheck" in services[name], name
    for name in ("api", "collector"):
        deps = services[name]["depends_on"]
        assert deps["db"]["condition"] == "service_healthy"
        assert deps["broker"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert services["video"]["depends_on"]["broker"]["condition"] == "service_healthy"


def test_every_service_command_is_a_real_its_command() -> None:
    root = get_command(app)
    for name, svc in _compose()["services"].items():
        command = svc.get("command")
        if command is None or svc.get("image", "").startswith(("prom/", "grafana/")):
            continue
        argv = command if isinstance(command, list) else shlex.split(command)
        assert argv[0] == "its", name
        cmd = root
        args = argv[1:]
        while args and hasattr(cmd, "commands") and args[0] in cmd.commands:  # type: ignore[attr-defined]
            cmd = cmd.commands[args.pop(0)]  # type: ignore[attr-defined]
        assert not hasattr(cmd, "commands"), f"{name}: '{' '.join(argv)}' is a group, not a command"
        assert cmd is not root, f"{name}: unknown command {argv}"
        # every option given must be one the command declares
        known = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        for arg in args:
            if arg.startswith("--"):
                assert arg in known, f"{name}: {arg} is not an option of its {' '.join(argv[1:3])}"


def test_each_platform_service_logs_in_to_the_broker_as_its_own_role() -> None:
    from its.app.deploy import ROLES

    services = _compose()["services"]
    users = {r.user for r in ROLES}
    seen = {}
    for name in ("api", "collector", "video", "simulator"):
        url = services[name]["environment"]["ITS_MQTT_URL"]
        user = url.split("://", 1)[1].split(":", 1)[0]
        assert user in users, (name, user)
        seen[name] = user
    assert len(set(seen.values())) == len(seen)
    assert "-u healthcheck" in services["broker"]["healthcheck"]["test"][1] or \
        "mqtt://healthcheck:" in services["broker"]["healthcheck"]["test"][1]


def test_broker_config_raises_queue_limits_and_refuses_anonymous() -> None:
    conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf
    assert "max_queued_messages 5000000" in conf
    assert "password_file /mosquitto/config/passwd" in conf and "acl_file /mosquitto/config/acl" in conf
    # the generated files are never committed (its deploy init writes them)
    assert not (REPO / "deploy" / "mosquitto" / "passwd").exists()
    assert "mosquitto/passwd" in (REPO / "deploy" / ".gitignore").read_text()


def _default(value: str) -> str:
    """The default of a ``${VAR:-default}`` compose value (the value itself otherwise)."""
    return value.split(":-", 1)[1].rstrip("}") if value.startswith("${") and ":-" in value else value


def test_collector_replicas_share_one_subscription() -> None:
    from its.settings import Settings

    collector = _compose()["services"]["collector"]
    env = collector["environment"]
    assert env["ITS_DATABASE_URL"].startswith("postgresql://")  # the platform env is kept, not replaced
    mode = _default(env["ITS_COLLECTOR_SUBSCRIPTION"])
    # several exclusive collectors would each receive every message: replicas need `shared`
    if int(_default(str(collector["deploy"]["replicas"]))) > 1:
        assert mode == "shared"
    assert Settings(collector_subscription=mode).collector_subscription == mode
