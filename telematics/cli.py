"""``its gtfs import``, ``its simulate fleet`` and (from `telematics.eval_cli`) ``its eval arrivals``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from telematics.eval_cli import COMMANDS as EVAL_COMMANDS

__all__ = ["COMMANDS", "gtfs_import", "simulate_fleet"]


def gtfs_import(
    feed: Annotated[Path, typer.Argument(help="GTFS zip or folder of .txt files.")],
    agency: Annotated[str | None, typer.Option(help="Platform agency id (default: the feed's agency_id or file name).")] = None,
    rebase_calendar: Annotated[bool, typer.Option(help="Shift the calendar by whole weeks to cover today (demo feeds).")] = False,
) -> None:
    """Validate a GTFS feed and make it the agency's active feed, atomically."""
    from its.db import Database, migrate
    from its.runtime import start_runtime
    from its.settings import get_settings
    from telematics.gtfs import FeedError
    from telematics.gtfs.database import import_feed_file

    settings = get_settings()
    rt = start_runtime(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"}))
    assert rt.settings.database_url
    db = Database(rt.settings.database_url)
    try:
        migrate(db)
        result = import_feed_file(db, feed, agency, rebase_to=date.today() if rebase_calendar else None)
    except FeedError as exc:
        typer.echo(f"error: {feed.name}: {exc}", err=True)
        raise typer.Exit(2) from None
    except (ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        db.close()
        rt.stop()
    replaced = f", replacing version {result.replaced_version}" if result.replaced_version else ""
    counts = ", ".join(f"{n} {t.removeprefix('gtfs_')}" for t, n in result.rows.items())
    typer.echo(f"agency {result.agency}: feed version {result.feed_version} active{replaced} ({counts})")


def simulate_fleet(
    gtfs: Annotated[Path | None, typer.Option("--gtfs", help="Drive the trips of this feed's current service day.")] = None,
    replay: Annotated[Path | None, typer.Option("--replay", help="Replay this AVL CSV instead.")] = None,
    agency: Annotated[str | None, typer.Option(help="Agency id in the topics (default: as `its gtfs import`: the feed's agency_id or file name).")] = None,
    speedup: Annotated[float, typer.Option(min=0.01, help="Simulated seconds per real second.")] = 1.0,
    duration: Annotated[float, typer.Option(min=0.0, help="Stop after this many real seconds.")] = 600.0,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds of simulated time between a vehicle's pings.")] = 10.0,
    max_vehicles: Annotated[int | None, typer.Option(help="Simulate at most this many vehicles.")] = None,
    hide_trips: Annotated[bool, typer.Option(help="Omit trip ids (the platform must assign trips).")] = False,
    broker: Annotated[str | None, typer.Option(help="MQTT URL (default ITS_MQTT_URL).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    day: Annotated[str | None, typer.Option(help="Simulate this service date (YYYY-MM-DD) at the current time of day "
                                                 "instead of today (for feeds whose calendar has ended).")] = None,
    rebase_calendar: Annotated[bool, typer.Option(
        help="Shift the calendar by whole weeks to cover today, as `its gtfs import --rebase-calendar`.")] = False,
) -> None:
    """Publish realistic MQTT vehicle positions (QoS 1) from a GTFS schedule or an AVL replay."""
    from its.settings import get_settings
    from telematics.gtfs import FeedError, read_feed
    from telematics.gtfs import rebase_calendar as store_rebase
    from telematics.simulator import run_fleet, run_replay, same_time_on

    if (gtfs is None) == (replay is None):
        typer.echo("error: give exactly one of --gtfs or --replay", err=True)
        raise typer.Exit(2)
    url = broker or get_settings().mqtt_url
    if not url:
        typer.echo("error: no broker: pass --broker or set ITS_MQTT_URL", err=True)
        raise typer.Exit(2)
    try:
        if gtfs is not None:
            feed = read_feed(gtfs)
            if rebase_calendar:
                feed = store_rebase(feed, date.today())
            ids = feed.agency.get("agency_id")
            agency = agency or (str(ids.iloc[0]) if ids is not None and str(ids.iloc[0]) else gtfs.stem)
            start = None if day is None else same_time_on(date.fromisoformat(day), feed.timezone)
            sent = run_fleet(feed, url, agency, duration_s=duration, interval_s=interval, speedup=speedup,
                             start_s=start, include_trip=not hide_trips, max_vehicles=max_vehicles, seed=seed)
        else:
            assert replay is not None
            sent = run_replay(replay, url, agency or replay.stem, duration_s=duration, speedup=speedup)
    except (FeedError, ValueError, ConnectionError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"published {sent} positions")


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("gtfs", "import", gtfs_import),
    ("simulate", "fleet", simulate_fleet),
    *EVAL_COMMANDS,
]
