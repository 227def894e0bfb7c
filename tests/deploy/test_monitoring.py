"""deploy/grafana/*.json and deploy/alerts.yml query only metrics the platform exports.

The metrics are those of the modules that define them (every ``prometheus_client`` user under
its/ and the domains: its.metrics, video.worker), read from the process registry and from the
/metrics page of a real app; tests/deploy/test_compose_run.py checks the same against the
running services' pages.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PACKAGES = ("its", "telematics", "parking", "video", "traffic", "maps")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
             "gauge": ("",), "summary": ("_sum", "_count", "_created"), "info": ("_info",)}
# PromQL words that look like metric names
_PROMQL = {"sum", "rate", "irate", "increase", "by", "without", "le", "histogram_quantile", "max", "min", "avg",
           "count", "absent", "or", "and", "unless", "on", "ignoring", "clamp_min", "clamp_max", "topk",
           "bottomk", "humanizeDuration", "humanizePercentage", "bool", "offset"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label matchers and ranges stripped)."""
    bare = re.sub(r"\{[^}]*\}", "", re.sub(r"\[[^\]]*\]", "", expr))
    bare = re.sub(r'"[^"]*"', "", bare)
    words = set(re.findall(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w(])", bare))
    words |= {w for w in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{", re.sub(r"\[[^\]]*\]", "", expr))}
    by_lists = set(re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr))
    labels = {w.strip() for group in by_lists for w in group.split(",")}
    return {w for w in words - _PROMQL - labels if not re.fullmatch(r"\d+(?:e-?\d+)?", w)}


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in sorted((DEPLOY / "grafana").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", [])]
    return exprs


def dashboard_metrics() -> set[str]:
    return set().union(*(metric_names(e) for e in dashboard_exprs()))


def rules() -> list[dict]:  # type: ignore[type-arg]
    doc = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def rule_metrics() -> set[str]:
    return set().union(*(metric_names(r["expr"]) for r in rules()))


def metric_modules() -> list[str]:
    """Modules that use prometheus_client to define metrics (not just to serve them)."""
    found = []
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            tree = ast.parse(path.read_text())
            defines = any(isinstance(n, ast.Call) and getattr(n.func, "id", "") in ("Counter", "Gauge", "Histogram", "Summary")
                          for n in ast.walk(tree))
            imports = any(isinstance(n, ast.ImportFrom) and n.module == "prometheus_client" for n in ast.walk(tree))
            if defines and imports:
                found.append(".".join(path.relative_to(REPO).with_suffix("").parts))
    return sorted(found)


def registry_names() -> set[str]:
    """Sample names of every metric the metric-defining modules register."""
    import importlib

    for module in metric_modules():
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        names |= {family.name + s for s in SUFFIXES.get(family.type, ("",))}
    return names


def test_the_metric_modules_are_the_kernel_and_the_camera_worker() -> None:
    assert {"its.metrics", "video.worker"} <= set(metric_modules())


def test_dashboard_queries_only_exported_metrics() -> None:
    wanted = dashboard_metrics()
    # what the dashboard must show (issue #23): ingest rate and lag, dead letters by reason,
    # API latency by route, camera fps and status, estimator update time
    assert {"its_messages_stored_total", "its_ingest_lag_seconds_bucket", "its_messages_rejected_total",
            "its_http_request_seconds_bucket", "its_camera_frames_total", "its_camera_online",
            "its_estimator_update_seconds_bucket"} <= wanted
    assert wanted - {"up"} - registry_names() == set()


def test_dashboard_is_a_provisionable_grafana_dashboard() -> None:
    (path,) = sorted((DEPLOY / "grafana").glob("*.json"))
    dash = json.loads(path.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 30
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dash["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "its-prometheus"
        assert panel["targets"] and panel["description"]
    datasource = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["uid"] == "its-prometheus"
    provider = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "dashboards" / "its.yml").read_text())
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = dict(v.rsplit(":", 2)[:2] if v.count(":") == 2 else v.split(":") for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana"] == provider["providers"][0]["options"]["path"]


def test_alert_rules_parse_and_reference_exported_metrics() -> None:
    names = {r["alert"] for r in rules()}
    assert {"IngestLagHigh", "CollectorDown", "ApiServerErrors", "CameraOffline"} <= names
    for rule in rules():
        assert rule["expr"].strip() and rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s"))
    wanted = rule_metrics()
    assert "up" in wanted
    assert wanted - {"up"} - registry_names() == set()
    prom = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {j["job_name"] for j in prom["scrape_configs"]}
    # the `up{job=...}` the rules watch are jobs Prometheus scrapes
    assert set(re.findall(r'job="(\w+)"', " ".join(r["expr"] for r in rules()))) <= jobs


def test_a_real_apps_metrics_page_declares_the_api_metrics(db_url: str) -> None:
    from its.app.factory import create_app
    from its.settings import load_settings

    app = create_app(load_settings(database_url=db_url, mqtt_url=None))
    with TestClient(app) as client:
        client.get("/healthz")
        text = client.get("/metrics").text
    declared = set(re.findall(r"^# TYPE (\S+) (\w+)", text, re.M))
    exported = {name for name, _ in declared} | {name + s for name, kind in declared for s in SUFFIXES.get(kind, ("",))}
    api_side = {m for m in dashboard_metrics() | rule_metrics() if m.startswith("its_http")}
    assert api_side and api_side <= exported
    assert 'its_http_requests_total{route="/healthz",status="200"}' in text


def test_metric_names_of_a_promql_expression() -> None:
    expr = 'histogram_quantile(0.95, sum by (le, route) (rate(its_http_request_seconds_bucket{job="api"}[5m]))) > 0.5'
    assert metric_names(expr) == {"its_http_request_seconds_bucket"}
    assert metric_names('up{job="collector"} == 0 or absent(up{job="collector"})') == {"up"}
    assert metric_names("its_camera_online == 0") == {"its_camera_online"}
