"""``its`` commands of the traffic domain: thin wrappers over library functions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["COMMANDS", "bench_congestion", "eval_congestion", "place_camera"]


def eval_congestion(
    segments: Annotated[Path, typer.Option("--segments", help="segments.csv (segment_id,lat,lon).")],
    adjacency: Annotated[Path, typer.Option("--adjacency", help="adjacency.csv (from_segment,to_segment,weight).")],
    speeds: Annotated[Path, typer.Option("--speeds", help="speeds.csv (timestamp,segment_id,speed_kmh): the test set.")],
    train: Annotated[Path | None, typer.Option("--train", help="History speeds CSV (other days).")] = None,
    train_days: Annotated[int | None, typer.Option(
        "--train-days", help="Without --train: use the first N local days of SPEEDS as history, the rest as test "
                             "(default: all days but the last).")] = None,
    observed_frac: Annotated[float, typer.Option("--observed-frac", help="Visible fraction of segments per timestamp.")] = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the visible subsets.")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
    references: Annotated[bool, typer.Option(
        "--references", help="Also score reference predictors given more information than the methodology "
                             "allows (full past, non-causal, noise floor) to show how low the MAE can go.")] = False,
    model: Annotated[str, typer.Option(
        "--model", help="Model fitted on the history: boosted (trees over the per-segment linear model), "
                        "linear, or smoothing (graph smoothing alone, as on probe-only roads).")] = "boosted",
) -> None:
    """Hide segments at random per timestamp and score the congestion estimator (MAE, km/h)."""
    from its.console import print_json_line
    from traffic.evaluate import evaluate_files

    try:
        result = evaluate_files(segments, adjacency, speeds, train=train, train_days=train_days,
                                observed_frac=observed_frac, seed=seed, references=references,
                                model=model)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(result.summary())
    if json_out:
        print_json_line(result.to_json())


def bench_congestion(
    grid: Annotated[int, typer.Option("--grid", help="Synthetic grid side (intersections); 159 → 100,488 edges.")] = 159,
    osm: Annotated[Path | None, typer.Option("--osm", help="OSM extract added to the grid (default: the shared "
                                                             "Helsinki extract when present).")] = None,
    routes: Annotated[int, typer.Option("--routes", help="Routing queries timed.")] = 200,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Full-network estimate update time and congestion-aware routing latency on >= 100k edges."""
    from its.console import print_json_line
    from traffic.bench import run_congestion_bench

    result = run_congestion_bench(grid_side=grid, osm_path=osm, n_routes=routes)
    typer.echo(
        f"congestion bench: {result['edges']} edges; update {result['update_ms']:.1f} ms "
        f"(median of {result['updates']}), route p99 {result['route_p99_ms']:.1f} ms "
        f"(p50 {result['route_p50_ms']:.1f} ms over {result['routes']} queries)"
    )
    if json_out:
        print_json_line({k: result[k] for k in ("edges", "update_ms", "route_p99_ms")})


def place_camera(
    camera_id: Annotated[str, typer.Argument(help="Camera id (as in cameras.yaml).")],
    line: Annotated[str, typer.Option("--line", help="Counting line id (as in cameras.yaml).")],
    at: Annotated[str, typer.Option("--at", help="Where the line crosses the road: 'lat,lon' (degrees).")],
    heading: Annotated[float, typer.Option("--heading", help="Travel bearing of 'in' vehicles (degrees from north).")],
    network: Annotated[str, typer.Option("--network", help="Stored road network (default: the first stored).")] = "",
    max_distance_m: Annotated[float, typer.Option("--max-distance-m", help="Farthest road accepted (m).")] = 50.0,
) -> None:
    """Place a camera's counting line on the road network (its counts feed the congestion estimate)."""
    from its.commands import platform_db, settings_or_exit
    from traffic.cameras import place_camera_line

    try:
        lat_s, lon_s = at.split(",")
        lat, lon = float(lat_s), float(lon_s)
    except ValueError:
        typer.echo(f"error: --at must be 'lat,lon' in degrees, got {at!r}", err=True)
        raise typer.Exit(2) from None
    with platform_db(settings_or_exit()) as db:
        placed = place_camera_line(db, camera_id, line, lat, lon, heading, network, max_distance_m)
    typer.echo(f"camera {camera_id} line {line}: network {placed.network}, edge in {placed.edge_in}, "
               f"out {placed.edge_out}")


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("eval", "congestion", eval_congestion),
    ("bench", "congestion", bench_congestion),
    ("traffic", "place-camera", place_camera),
]
