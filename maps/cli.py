"""``its maps ...`` commands: thin wrappers over the maps library."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

__all__ = ["COMMANDS", "cache_path", "maps_import"]


def cache_path(data_dir: Path, name: str) -> Path:
    """Where the disk cache of network ``name`` lives under the data dir."""
    return Path(data_dir) / "maps" / f"{name}.npz"


def maps_import(
    extract: Annotated[Path | None, typer.Argument(help="OSM extract (.osm.pbf). Omit to derive from --gtfs.")] = None,
    gtfs: Annotated[Path | None, typer.Option("--gtfs", help="GTFS feed whose shapes give the network when no extract is given.")] = None,
    bbox: Annotated[str | None, typer.Option("--bbox", help="Keep roads inside W,S,E,N (degrees).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Network name (default: the file name).")] = None,
    store: Annotated[bool, typer.Option("--store/--no-store", help="Write the network to the database.")] = True,
) -> None:
    """Build the road network from OSM (or GTFS shapes), cache it on disk and store it."""
    from its.commands import settings_or_exit
    from maps.from_gtfs import GtfsShapeError, derive_network
    from maps.osm import OsmImportError, import_osm, parse_bbox

    if (extract is None) == (gtfs is None):
        typer.echo("error: give either an OSM extract or --gtfs FEED", err=True)
        raise typer.Exit(2)
    try:
        box = parse_bbox(bbox) if bbox else None
        if extract is not None:
            network = _import_with_progress(extract, box, name, import_osm)
        else:
            assert gtfs is not None
            network = derive_network(gtfs, name=name).network
            if box is not None:
                from maps.geojson import edges_in_bbox
                keep = np.zeros(network.n_edges, dtype=bool)
                keep[edges_in_bbox(network, box)] = True
                network = network.subset(keep)
    except (OsmImportError, GtfsShapeError, FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    cached = network.save(cache_path(settings.data_dir, network.name))
    typer.echo(
        f"network {network.name}: {network.n_nodes} nodes, {network.n_edges} edges, "
        f"{network.length_m.sum() / 1000:.1f} km; cached at {cached}"
    )
    if store:
        from its.runtime import open_database  # starts the embedded database when none is set
        from maps.store import save_network

        rt, db = open_database(settings.model_copy(update={"mqtt_url": settings.mqtt_url or "mqtt://unused:1"}))
        try:
            written = save_network(db, network)
        finally:
            db.close()
            rt.stop()
        typer.echo(f"stored {written} edges in road_edges")


def _import_with_progress(path: Path, box: Any, name: str | None, import_osm: Callable[..., Any]) -> Any:
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description} {task.completed} ways"),
                  disable=not sys.stderr.isatty(), transient=True) as bar:
        task = bar.add_task(f"reading {path.name}", total=None)
        return import_osm(path, bbox=box, name=name, progress=lambda n: bar.update(task, completed=n))


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("maps", "import", maps_import),
]
