"""``its`` commands of the parking domain: thin wrappers over library functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["COMMANDS", "eval_guidance", "eval_parking", "import_sites_file", "parking_import", "simulate_parking"]

TIMEZONE_HELP = ("IANA time zone of the readings (e.g. Europe/London): needed when timestamps have no UTC offset"
                 " (local wall-clock or epoch seconds); every reading's local time of day is then taken there.")


def eval_parking(
    history: Annotated[Path, typer.Option("--history", help="Parking history CSV (site_id,timestamp,capacity,occupied).")],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
    holdout_days: Annotated[int, typer.Option(help="Score the last this many local days apart (days; 0: none).",
                                              min=0)] = 14,
    every_min: Annotated[int | None, typer.Option(
        help="Resample the readings to one every this many minutes first (min; divides or is a multiple of 60).")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help=TIMEZONE_HELP)] = None,
) -> None:
    """Walk-forward evaluation of free-space forecasts against persistence and seasonal baselines."""
    from its.console import print_json_line
    from parking.cleaning import HistoryFormatError
    from parking.config import ParkingSettings
    from parking.evaluate import evaluate_history_file

    try:
        result = evaluate_history_file(history, ParkingSettings(), holdout_days, every_min, timezone)
    except (HistoryFormatError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(result.summary())
    if json_out:
        print_json_line(result.as_json())


def eval_guidance(
    history: Annotated[Path, typer.Option("--history", help="Parking history CSV (site_id,timestamp,capacity,occupied).")],
    sites: Annotated[Path | None, typer.Option("--sites", help="Sites file (GeoJSON/CSV) giving site positions.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
    arrive_in_min: Annotated[float, typer.Option(help="Drive time to the car park (min, 0-60).", min=0, max=60)] = 15.0,
    every_min: Annotated[int, typer.Option(help="Minutes between request times (min).", min=1)] = 15,
    radius_m: Annotated[float, typer.Option(help="With positions: candidates within this distance (m).",
                                            min=0)] = 2000.0,
    holdout_days: Annotated[int, typer.Option(help="Report the last this many local days apart (days).", min=0)] = 14,
    timezone: Annotated[str | None, typer.Option("--timezone", help=TIMEZONE_HELP)] = None,
) -> None:
    """Replay parking guidance on a history: share of recommended sites with a free space on arrival,
    against the naive 'most free spaces now' choice."""
    from its.console import print_json_line
    from parking.cleaning import HistoryFormatError, read_history_csv
    from parking.config import ParkingSettings
    from parking.evaluate_guidance import evaluate_guidance
    from parking.sites import SitesFileError, read_sites

    try:
        site_list = read_sites(sites) if sites is not None else None
        result = evaluate_guidance(read_history_csv(history, timezone), site_list, ParkingSettings(), arrive_in_min, every_min,
                                   radius_m, holdout_days)
    except (HistoryFormatError, SitesFileError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(result.summary())
    if json_out:
        print_json_line(result.as_json())


def import_sites_file(db_url: str, path: Path) -> str:
    """Validate a sites file and upsert it into the database at ``db_url``; return a summary line.

    Raises
    ------
    parking.sites.SitesFileError
        Naming every bad line/feature and field; nothing is written then.
    """
    from datetime import UTC, datetime

    from its.db import Database, migrate
    from parking.sites import read_sites
    from parking.store import upsert_sites

    sites = read_sites(path)
    db = Database(db_url)
    try:
        migrate(db)
        result = upsert_sites(db, sites, datetime.now(UTC))
    finally:
        db.close()
    return (f"{path}: {len(sites)} sites ({result.inserted} new, {result.updated} updated), "
            f"{result.spaces} sensor spaces")


def parking_import(
    sites: Annotated[Path, typer.Argument(help="Sites file: GeoJSON FeatureCollection or CSV.")],
) -> None:
    """Import parking sites and spaces (validated; re-import updates them)."""
    from its.commands import settings_or_exit
    from its.runtime import open_database
    from parking.sites import SitesFileError, read_sites

    try:
        read_sites(sites)  # validate before starting anything
    except SitesFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    rt, db = open_database(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"}))
    db.close()
    try:
        assert rt.settings.database_url
        typer.echo(import_sites_file(rt.settings.database_url, sites))
    finally:
        rt.stop()


def simulate_parking(
    sites: Annotated[Path | None, typer.Option("--sites", help="Sites file (GeoJSON/CSV) to simulate.")] = None,
    profile: Annotated[str, typer.Option(help="Daily occupancy curve: office, retail, hospital or flat.")] = "retail",
    replay: Annotated[Path | None, typer.Option("--replay", help="Parking history CSV to replay as counter messages.")] = None,
    speedup: Annotated[float, typer.Option(help="Replay this many times faster than recorded.")] = 60.0,
    duration: Annotated[float, typer.Option(help="Stop after this many seconds (s); 0 runs until interrupted.")] = 0.0,
    step: Annotated[float, typer.Option(help="Seconds between synthetic steps (s).")] = 5.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Publish realistic parking sensor/counter messages over MQTT (QoS 1), or replay a history."""
    from its.commands import settings_or_exit
    from its.mqtt import connect
    from parking.cleaning import HistoryFormatError
    from parking.config import ParkingSettings
    from parking.simulator import PROFILES, run_replay, run_simulation
    from parking.sites import SitesFileError, read_sites

    if (sites is None) == (replay is None):
        typer.echo("error: give exactly one of --sites or --replay", err=True)
        raise typer.Exit(2)
    if profile not in PROFILES:
        typer.echo(f"error: unknown profile {profile!r}; choose one of {', '.join(PROFILES)}", err=True)
        raise typer.Exit(2)
    settings = settings_or_exit()
    if not settings.mqtt_url:
        typer.echo("error: set ITS_MQTT_URL to the broker to publish to", err=True)
        raise typer.Exit(2)
    try:
        site_list = read_sites(sites) if sites is not None else []
    except SitesFileError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    conn = connect(settings.mqtt_url, ca_file=settings.mqtt_ca_file)
    pending = []

    def publish(topic: str, payload: bytes, retain: bool) -> None:
        pending.append(conn.publish(topic, payload, qos=1, retain=retain))
        if len(pending) >= 500:
            for info in pending:
                info.wait_for_publish(30)
            pending.clear()

    try:
        if replay is not None:
            sent = run_replay(replay, speedup, publish, duration)
        else:
            sent = run_simulation(site_list, profile, publish, duration, step, seed, ParkingSettings().timezone)
        for info in pending:
            info.wait_for_publish(30)
    except (HistoryFormatError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        sent = -1
    finally:
        conn.close()
    if sent < 0:
        typer.echo("interrupted")
        return
    typer.echo(f"published {sent} parking messages")


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("parking", "import", parking_import),
    ("eval", "parking", eval_parking),
    ("eval", "guidance", eval_guidance),
    ("simulate", "parking", simulate_parking),
]
