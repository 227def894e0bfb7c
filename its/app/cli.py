"""The ``its`` command line: thin wrappers over library functions."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated

import typer

from its.app.registry import cli_groups, domain_commands
from its.commands import open_database, platform_db, settings_or_exit
from its.db import Database
from its.settings import Settings

app = typer.Typer(help="ITS data platform: arrivals, parking, camera counts, congestion.", no_args_is_help=True)

GROUPS: dict[str, typer.Typer] = {}
GROUP_HELP = {
    "db": "Database schema.",
    "simulate": "Simulators publishing realistic telemetry.",
    "eval": "Score the platform on real data (fixed methodology).",
    "bench": "Benchmarks against a bare baseline in the same run.",
    "users": "Dispatcher accounts.",
    "keys": "App API keys.",
    "devices": "MQTT device credentials.",
    "deploy": "Docker Compose deployment files.",
    **cli_groups(),
}


def group(name: str) -> typer.Typer:
    if name not in GROUPS:
        GROUPS[name] = typer.Typer(help=GROUP_HELP.get(name, name), no_args_is_help=True)
        app.add_typer(GROUPS[name], name=name)
    return GROUPS[name]


def _logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


for name in ("db", *cli_groups(), "simulate", "eval", "bench", "users", "keys", "devices"):
    group(name)


@group("db").command("migrate")
def db_migrate() -> None:
    """Apply pending migrations (idempotent, safe to run concurrently)."""
    from its.db import migrate, timeseries_backend
    from its.runtime import start_runtime

    settings = settings_or_exit()
    rt = start_runtime(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"}))
    assert rt.settings.database_url
    db = Database(rt.settings.database_url)
    applied = migrate(db)
    typer.echo(f"applied {len(applied)} migrations ({', '.join(applied) or 'none pending'}); "
               f"time-series backend: {timeseries_backend(db)}")
    db.close()
    rt.stop()


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default ITS_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default ITS_API_PORT).")] = None,
) -> None:
    """Run the HTTP API with every domain service and the control centre."""
    import uvicorn

    from its.app.factory import build_context, create_app
    from its.app.registry import domain_services
    from its.http_server import uvicorn_options

    settings = settings_or_exit()
    _logging(settings.log_level)
    rt, db = open_database(settings)
    db.close()
    ctx = build_context(rt.settings, rt.broker_kind)
    application = create_app(rt.settings, domain_services(), context=ctx, extra_routers=_extra_routers())
    from its.app.reports.nightly import nightly_report_loop

    stop_nightly = threading.Event()
    threading.Thread(target=nightly_report_loop, args=(rt.settings, ctx.db, stop_nightly),
                     name="nightly-report", daemon=True).start()
    try:
        # request limits (body, streams) are in the app; header limits and timeouts in the server
        uvicorn.run(application, host=host or settings.api_host,
                    port=port or settings.api_port, **uvicorn_options(rt.settings))
    finally:
        stop_nightly.set()
        rt.stop()


def _extra_routers() -> list[object]:
    from its.app.control import control_routers

    return list(control_routers())


@app.command("collect")
def collect(
    client_id: Annotated[str | None, typer.Option(help="Persistent MQTT session id.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics on this port "
                                                           "(default ITS_METRICS_PORT).")] = None,
) -> None:
    """Run a collector: MQTT telemetry into the database, ack after commit."""
    from its.app.registry import domain_routes
    from its.collector import Collector
    from its.metrics import serve_metrics

    settings = settings_or_exit()
    _logging(settings.log_level)
    serve_metrics(metrics_port or settings.metrics_port)  # the spool backlog, ingest lag... of this collector
    rt, db = open_database(settings)
    collector = Collector(rt.settings, db, domain_routes(), client_id=client_id)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    collector.start()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        collector.stop()
        db.close()
        rt.stop()


@app.command("demo")
def demo(
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (scripted runs).")] = None,
    osm: Annotated[Path | None, typer.Option(help="OSM extract for the road network (default: from the feed's shapes).")] = None,
) -> None:
    """Run the whole platform with a demo city (Cairns), simulators and a camera."""
    from its.app.demo import run_demo

    settings = settings_or_exit()
    _logging("WARNING")
    raise typer.Exit(run_demo(settings, duration_s=duration, osm=osm, echo=typer.echo))


@group("users").command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="dispatcher or admin")] = "dispatcher",
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Create or update a control-centre user."""
    from its.auth import create_user

    with platform_db(settings_or_exit()) as db:
        create_user(db, username, password, role)
    typer.echo(f"user {username} ({role}) saved")


@group("keys").command("create")
def keys_create(
    name: str,
    quota: Annotated[int | None, typer.Option(help="Requests per minute (default ITS_APP_KEY_QUOTA_PER_MIN).")] = None,
) -> None:
    """Create an app API key; prints it once."""
    from its.auth import create_api_key

    settings = settings_or_exit()
    with platform_db(settings) as db:
        key = create_api_key(db, name, quota or settings.app_key_quota_per_min)
    typer.echo(key)


@group("keys").command("list")
def keys_list() -> None:
    """List app keys (ids, names, quotas, revocation)."""
    from its.auth import list_api_keys

    with platform_db(settings_or_exit()) as db:
        keys = list_api_keys(db)
    for k in keys:
        state = f"revoked {k['revoked_at']:%Y-%m-%d %H:%M}" if k["revoked_at"] else "active"
        typer.echo(f"{k['key_id']}\t{k['name']}\t{k['quota_per_min']}/min\t{state}")


@group("keys").command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke an app key (effective within a second everywhere)."""
    from its.auth import revoke_api_key

    with platform_db(settings_or_exit()) as db:
        ok = revoke_api_key(db, key_id)
    if not ok:
        typer.echo(f"no active key {key_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


@group("devices").command("add")
def devices_add(
    device_id: str,
    kind: Annotated[str, typer.Option(help="vehicle, parking-sensor (id SITE.SPACE), parking-counter or camera")],
    broker_dir: Annotated[Path | None, typer.Option(help="Write passwd and acl here (default data dir/broker-auth).")] = None,
) -> None:
    """Register a device; prints its MQTT password once and rewrites the broker's passwd/ACL."""
    from its.device_registry import add_device

    settings = settings_or_exit()
    with platform_db(_no_broker(settings)) as db:
        password = add_device(db, device_id, kind)
        applied = _write_auth(settings, db, broker_dir)
    typer.echo(password)
    if not applied:
        typer.echo("send SIGHUP to mosquitto to apply", err=True)


@group("devices").command("revoke")
def devices_revoke(
    device_id: str,
    broker_dir: Annotated[Path | None, typer.Option(help="Write passwd and acl here (default data dir/broker-auth).")] = None,
) -> None:
    """Revoke a device and rewrite the broker's passwd/ACL (reload Mosquitto with SIGHUP)."""
    from its.device_registry import revoke_device

    settings = settings_or_exit()
    with platform_db(_no_broker(settings)) as db:
        ok = revoke_device(db, device_id)
        applied = _write_auth(settings, db, broker_dir)
    if not ok:
        typer.echo(f"no active device {device_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {device_id}" + ("" if applied else "; send SIGHUP to mosquitto to apply"))


@group("devices").command("list")
def devices_list() -> None:
    """List registered devices."""
    from its.device_registry import list_devices

    with platform_db(_no_broker(settings_or_exit())) as db:
        devices = list_devices(db)
    for device_id, kind, active in devices:
        typer.echo(f"{device_id}\t{kind}\t{'active' if active else 'revoked'}")


def _no_broker(settings: Settings) -> Settings:
    """Device admin needs the database only: never start an embedded broker for it."""
    return settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"})


def _write_auth(settings: Settings, db: Database, broker_dir: Path | None) -> bool:
    """Rewrite the broker's password files and ACLs; reload the embedded broker when it runs
    (return whether it did)."""
    from its.broker import reload_running_broker
    from its.device_registry import write_broker_auth

    write_broker_auth(db, broker_dir or settings.data_dir / "broker-auth")
    return broker_dir is None and reload_running_broker(settings.data_dir / "mosquitto")


@app.command("config")
def config(markdown: Annotated[bool, typer.Option(help="Print the README configuration table.")] = False) -> None:
    """Show every ITS_* setting with its default."""
    from its.app.config_doc import settings_table

    typer.echo(settings_table() if markdown else settings_table(markdown=False))


@group("bench").command("ingest")
def bench_ingest(
    messages: Annotated[int, typer.Option(help="Messages to publish.")] = 100_000,
    broker: Annotated[str | None, typer.Option(help="Broker URL (default: an embedded Mosquitto started here).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Collector drain rate against a bare paho client on the same backlog."""
    from its.app.bench.ingest import run_ingest_bench
    from its.console import print_json_line

    settings = settings_or_exit()
    rt, db = open_database(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"}))
    db.close()
    result = run_ingest_bench(rt.settings, messages=messages, broker_url=broker)
    rt.stop()
    typer.echo(
        f"collector {result['collector_msgs_per_s']:.0f} msg/s, bare paho {result['bare_client_msgs_per_s']:.0f} msg/s, "
        f"ratio {result['ratio']:.2f}; stored {result['stored']}/{result['messages']}, lost {result['lost']}, "
        f"duplicates {result['duplicates']}"
    )
    if json_out:
        print_json_line(result)


@group("bench").command("api")
def bench_api(
    duration: Annotated[float, typer.Option(help="Seconds per measurement.")] = 5.0,
    rate: Annotated[float, typer.Option(help="Paced rate for the p99 measurement, requests/s.")] = 1000.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Read endpoints (arrivals, parking) against a bare FastAPI endpoint of similar size."""
    import tempfile

    from its.app.bench.api import run_api_bench
    from its.app.demo import cairns_feed
    from its.console import print_json_line

    settings = settings_or_exit()
    rt, db = open_database(settings)
    db.close()
    try:
        feed = cairns_feed(Path(tempfile.mkdtemp(prefix="its-bench-")))
        results = run_api_bench(rt.settings, feed, duration_s=duration, rate=rate)
    finally:
        rt.stop()
    for r in results:
        typer.echo(f"{r['endpoint']:<22} {r['rps']:>8.0f} req/s (bare {r['bare_rps']:.0f}, ratio {r['ratio']}), "
                   f"p99 {r['p99_ms']} ms at {r['p99_ms_at_rps']:.0f} req/s")
    if json_out:
        print_json_line({"endpoints": results})


@group("bench").command("soak")
def bench_soak(
    buses: Annotated[int, typer.Option(help="Buses publishing at 1 Hz.")] = 2000,
    sensors: Annotated[int, typer.Option(help="Parking space sensors (one report a minute each).")] = 10000,
    minutes: Annotated[float, typer.Option(help="Duration.")] = 10.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Sustained load through broker, collector, estimators and API; memory and lag over time."""
    from its.app.bench.soak import run_soak
    from its.console import print_json_line

    settings = settings_or_exit()
    rt, db = open_database(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"}))
    db.close()
    try:
        result = run_soak(rt.settings, buses=buses, sensors=sensors, minutes=minutes)
    finally:
        rt.stop()
    typer.echo(f"{result['messages']} messages in {minutes} min: stored {result['stored']}, lost {result['lost']}, "
               f"duplicates {result['duplicates']}; ingest lag p99 {result['ingest_lag_p99_s']} s; "
               f"API p99 {result['api_p99_ms']} ms; RSS collector {result['rss_mb']['collector']} MB, "
               f"api {result['rss_mb']['api']} MB")
    if json_out:
        print_json_line(result)


@group("bench").command("all")
def bench_all(
    out: Annotated[Path, typer.Option(help="Where the markdown table and plots go.")] = Path("bench-results"),
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Every benchmark in sequence; writes bench.md and PNG plots under --out."""
    from its.app.bench.all import plot, render_markdown, run_all
    from its.console import print_json_line

    settings = settings_or_exit()
    env = dict(os.environ)
    rt = None
    if not settings.database_url:
        from its.runtime import start_runtime

        rt = start_runtime(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"}))
        env["ITS_DATABASE_URL"] = rt.settings.database_url or ""
    try:
        results = run_all(env)
    finally:
        if rt is not None:
            rt.stop()
    out.mkdir(parents=True, exist_ok=True)
    table = render_markdown(results)
    (out / "bench.md").write_text(table)
    plots = plot(results, out)
    typer.echo(table)
    typer.echo(f"wrote {out / 'bench.md'} and {', '.join(str(p) for p in plots)}")
    if json_out:
        print_json_line(results)


@group("bench").command("evidence")
def bench_evidence(
    data: Annotated[Path, typer.Option(help="The shared real data folder.")] = Path("../shared/data"),
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("docs/img/accuracy.png"),
) -> None:
    """Run the arrivals and parking evals and plot their error by horizon against the baselines."""
    from its.app.bench.evidence import plot_accuracy, run_eval

    wmata = data / "avl" / "wmata"
    arrivals = run_eval(["arrivals", "--gtfs", str(wmata / "wmata_gtfs.zip"), "--avl", str(wmata / "wmata_avl.csv")])
    parking = run_eval(["parking", "--history", str(data / "parking" / "birmingham" / "birmingham_occupancy.csv")])
    typer.echo(f"wrote {plot_accuracy(arrivals, parking, out)}")


def _register_domain_commands() -> None:
    from its.app.reports.cli import report

    app.command("report")(report)
    from its.app.deploy import COMMANDS as DEPLOY_COMMANDS

    for grp, name, fn in (*domain_commands(), *DEPLOY_COMMANDS):
        if grp:
            group(grp).command(name)(fn)
        else:
            app.command(name)(fn)


_register_domain_commands()


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover - `python -m its.app.cli`
    main()
