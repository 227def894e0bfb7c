"""``its gtfs import``, ``its simulate fleet``, ``its eval holding``, ``its bench holding|assignment`` and (from `telematics.eval_cli`) ``its eval arrivals``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from telematics.eval_cli import COMMANDS as EVAL_COMMANDS

__all__ = ["COMMANDS", "bench_assignment", "eval_holding", "gtfs_import", "simulate_fleet"]


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
    speedup: Annotated[float, typer.Option(min=0.01, help="Simulated seconds per real second (not 1: positions are stamped with the wall-clock time they are published at, so the platform keeps them).")] = 1.0,
    duration: Annotated[float, typer.Option(min=0.0, help="Stop after this many real seconds (0 runs until interrupted).")] = 600.0,
    interval: Annotated[float, typer.Option(min=0.5, help="Seconds of simulated time between a vehicle's pings.")] = 10.0,
    max_vehicles: Annotated[int | None, typer.Option(help="Simulate at most this many vehicles.")] = None,
    hide_trips: Annotated[bool, typer.Option(help="Omit trip ids (the platform must assign trips).")] = False,
    broker: Annotated[str | None, typer.Option(help="MQTT URL (default ITS_MQTT_URL).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    day: Annotated[str | None, typer.Option(help="Simulate this service date (YYYY-MM-DD) at the current time of day "
                                                 "instead of today (for feeds whose calendar has ended); positions are "
                                                 "stamped with the wall clock and name no service date.")] = None,
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


def gtfsrt_poll(
    url: Annotated[str, typer.Argument(help="URL of the agency's GTFS-realtime VehiclePositions feed.")],
    agency: Annotated[str, typer.Option(help="Platform agency id (as `its gtfs import`).")],
    interval: Annotated[float, typer.Option(min=1.0, help="Seconds between fetches.")] = 15.0,
    header: Annotated[list[str] | None, typer.Option("--header", help="Extra request header K:V (repeatable).")] = None,
    gateway: Annotated[str, typer.Option(help="The topic's vehicle level for the relayed feed.")] = "gtfsrt",
    max_age: Annotated[float, typer.Option(help="Skip a feed whose header is older than this (s).")] = 600.0,
    timeout: Annotated[float, typer.Option(help="HTTP timeout (s).")] = 10.0,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds (default: until Ctrl-C).")] = None,
    once: Annotated[bool, typer.Option(help="Fetch once and exit.")] = False,
    broker: Annotated[str | None, typer.Option(help="MQTT URL (default ITS_MQTT_URL).")] = None,
) -> None:
    """Poll a GTFS-realtime feed over HTTP into the platform's ingest path (ETag, back-off, dedup)."""
    import signal
    import threading

    from its.mqtt import connect
    from its.settings import get_settings
    from telematics.gtfsrt_poll import GtfsrtPoller, PollConfig

    headers = {}
    for item in header or []:
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            typer.echo(f"error: --header {item!r}: expected K:V", err=True)
            raise typer.Exit(2)
        headers[key.strip()] = value.strip()
    mqtt_url = broker or get_settings().mqtt_url
    if not mqtt_url:
        typer.echo("error: no broker: pass --broker or set ITS_MQTT_URL", err=True)
        raise typer.Exit(2)
    conn = connect(mqtt_url, f"gtfsrt-{agency}-{gateway}")
    poller = GtfsrtPoller(PollConfig(url=url, agency=agency, gateway_id=gateway, interval_s=interval,
                                     timeout_s=timeout, headers=headers, max_feed_age_s=max_age),
                          lambda topic, payload: conn.publish(topic, payload, qos=1).wait_for_publish(30))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        results = [poller.poll_once()] if once else poller.run(stop, duration)
    except KeyboardInterrupt:
        results = []
    finally:
        poller.close()
        conn.close()
    published = sum(r.published for r in results)
    typer.echo(f"{len(results)} fetches, {published} vehicle positions published to {poller.topic}")


def eval_holding(
    gtfs: Annotated[Path, typer.Option("--gtfs", help="GTFS zip or folder of the schedule.")],
    avl: Annotated[Path | None, typer.Option(
        "--avl", help="AVL CSV of the day to replay (without: the timetable with a stochastic running-time model).")] = None,
    day: Annotated[str | None, typer.Option(help="Service date YYYY-MM-DD without --avl (default: busiest of week 1).")] = None,
    runs: Annotated[int, typer.Option(min=1, help="Random draws averaged.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    pax_per_stop_h: Annotated[float, typer.Option(min=0.0, help="Passenger arrivals per stop and hour.")] = 5.0,
    board_s: Annotated[float, typer.Option(min=0.0, help="Boarding time per passenger (s).")] = 3.0,
    dead_s: Annotated[float, typer.Option(min=0.0, help="Dead time per stop served (s).")] = 5.0,
    gain: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Headway rule gain.")] = None,
    cap_share: Annotated[float | None, typer.Option(min=0.0, help="Hold cap, share of the headway.")] = None,
    origin_cap_share: Annotated[float | None, typer.Option(
        min=0.0, help="Hold cap at a trip's first stop, share of the headway.")] = None,
    frequent_headway: Annotated[float, typer.Option(help="Headway-managed routes: scheduled headway up to this (s).")] = 720.0,
    route: Annotated[list[str] | None, typer.Option("--route", help="Only this route; repeatable.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object last.")] = False,
) -> None:
    """Simulate a day without control and with schedule- and headway-based holding; score per route."""
    import json

    from telematics.avl import AvlError
    from telematics.gtfs import FeedError
    from telematics.holding import DEFAULT_CAP_SHARE, DEFAULT_GAIN, DEFAULT_ORIGIN_CAP_SHARE
    from telematics.holding_eval import evaluate_holding

    try:
        result = evaluate_holding(
            gtfs, avl, day=date.fromisoformat(day) if day else None, runs=runs, seed=seed,
            pax_per_stop_h=pax_per_stop_h, board_s=board_s, dead_s=dead_s,
            gain=DEFAULT_GAIN if gain is None else gain,
            cap_share=DEFAULT_CAP_SHARE if cap_share is None else cap_share,
            origin_cap_share=DEFAULT_ORIGIN_CAP_SHARE if origin_cap_share is None else origin_cap_share,
            frequent_headway_s=frequent_headway, routes=route)
    except (FeedError, AvlError, ValueError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo("parameters: " + ", ".join(f"{k}={v}" for k, v in result["parameters"].items()))
    typer.echo("route: EWT s / headway CV / in-vehicle added % / bunching / holds, each none -> schedule -> headway")
    for rid, r in [*result["routes"].items(), ("overall", result["overall"])]:
        cols = [" -> ".join(str(r[k][s]) if s in r[k] else "-" for s in ("none", "schedule", "headway"))
                for k in ("ewt_s", "headway_cv", "in_vehicle_added_pct", "bunching", "holds") if k in r]
        freq = "" if "frequent" not in r else (" (frequent)" if r["frequent"] else " (timetabled)")
        typer.echo(f"{rid}{freq}: " + " / ".join(cols))
    rep = result["overall"]["reproduction_cv_error_pct"]
    typer.echo(f"no-control headway CV vs recorded: {rep} % off" if rep is not None else
               "no recorded day: reproduction not checked")
    if as_json:
        typer.echo(json.dumps(result))


def _result_or_exit(run: Callable[[], dict[str, Any]], errors: tuple[type[Exception], ...]) -> dict[str, Any]:
    """``run()``'s result, or the error on stderr and exit status 2 when it raises one of ``errors``."""
    try:
        return run()
    except errors as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def bench_holding(
    gtfs: Annotated[Path, typer.Option("--gtfs", help="GTFS zip or folder whose routes the fleet runs.")],
    day: Annotated[str, typer.Option(help="Service date YYYY-MM-DD whose trips are run.")],
    vehicles: Annotated[int, typer.Option(min=1, help="Buses on the road (routes copied until there are).")] = 500,
    updates: Annotated[int, typer.Option(min=2, help="Updates timed (the first, with the once-per-fleet "
                                                      "control stops, is reported apart).")] = 30,
    seed: Annotated[int, typer.Option(help="Random seed of the simulated delays.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Time the live holding advice per update for a large simulated fleet on a feed's real routes."""
    from its.console import print_json_line
    from telematics.gtfs import FeedError, read_feed
    from telematics.holding_bench import run_holding_bench

    result = _result_or_exit(lambda: run_holding_bench(read_feed(gtfs), date.fromisoformat(day), vehicles=vehicles,
                                                       updates=updates, seed=seed), (FeedError, ValueError, OSError))
    typer.echo(f"holding bench: {result['vehicles']} buses on {result['routes']} routes ({result['copies']} copies of "
               f"the feed's routes), {result['predictions']:,} predictions ({result['control_predictions']:,} at "
               f"control stops), {result['advice']} advice per update; advice {result['advise_ms']:.1f} ms wall "
               f"(p95 {result['advise_p95_ms']:.1f}), {result['advise_cpu_ms']:.1f} ms CPU (p95 "
               f"{result['advise_cpu_p95_ms']:.1f}) per update over {result['updates'] - 1} updates; first update "
               f"{result['first_update_ms']:.0f} ms; the board's predictions {result['board_ms']:.0f} ms")
    if as_json:
        print_json_line(result)


def bench_assignment(
    gtfs: Annotated[Path, typer.Option("--gtfs", help="GTFS zip or folder.")],
    avl: Annotated[Path, typer.Option("--avl", help="AVL CSV (read_avl columns) of the feed's buses.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Time trip assignment's projection of a day's pings onto every path (spatial index against a
    bare broadcast doing the same work, in one run) and the day's assignment with the ids hidden."""
    from its.console import print_json_line
    from telematics.assignment_bench import run_assignment_bench
    from telematics.avl import AvlError, read_avl
    from telematics.gtfs import FeedError, read_feed

    result = _result_or_exit(lambda: run_assignment_bench(read_feed(gtfs), read_avl(avl)), (FeedError, AvlError, OSError))
    typer.echo(f"assignment bench: {result['pings']:,} pings onto {result['paths']} paths ({result['segments']:,} "
               f"segments): index {result['index_s']:.2f} s, broadcast {result['broadcast_s']:.2f} s (x{result['ratio']}, "
               f"identical: {result['identical']}); the day's assignment with ids hidden {result['assignment_s']:.1f} s "
               f"({result['assignment_pings_per_s']:,.0f} pings/s)")
    if as_json:
        print_json_line(result)


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("bench", "holding", bench_holding),
    ("bench", "assignment", bench_assignment),
    ("gtfsrt", "poll", gtfsrt_poll),
    ("gtfs", "import", gtfs_import),
    ("simulate", "fleet", simulate_fleet),
    ("eval", "holding", eval_holding),
    *EVAL_COMMANDS,
]
