"""``its`` commands of the video domain: thin wrappers over library functions."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["COMMANDS", "bench_video_cmd", "default_clip", "eval_video", "video_run"]


def default_clip(name: str = "haar_video2.avi") -> Path:
    """A clip of the shared data (``ITS_SHARED_DATA``, default ``../shared/data``)."""
    root = Path(os.environ.get("ITS_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    return root / "video" / name


def eval_video(
    source: Annotated[Path | None, typer.Option("--source", help="Video file, image folder or .tar(.gz) of frames.")] = None,
    line: Annotated[list[str] | None, typer.Option("--line", help="Counting line X1,Y1,X2,Y2 in frame pixels (repeatable); `in` = crossing from its left to its right on screen.")] = None,
    cdnet: Annotated[Path | None, typer.Option("--cdnet", help="CDnet 2014 sequence archive: score the foreground and counts against its ground truth.")] = None,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Process one frame in N.")] = 1,
    fps: Annotated[float | None, typer.Option("--fps", help="Frame rate of image sequences (frames/s).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Count vehicles crossing lines in a clip, or score against CDnet ground truth."""
    from its.console import print_json_line
    from video.evaluate import count_source, parse_line
    from video.sources import SourceError

    try:
        lines = [parse_line(text, i) for i, text in enumerate(line or [])]
        if cdnet is not None:
            from video.cdnet import HIGHWAY_LINES, evaluate_cdnet

            result: dict[str, Any] = evaluate_cdnet(cdnet, tuple(lines) or HIGHWAY_LINES)
            fg = result["foreground"]
            typer.echo(f"CDnet {cdnet.name}: {result['frames']} frames at {result['fps']} fps; foreground over "
                       f"frames {result['scored_frames'][0]}-{result['scored_frames'][1]}: precision {fg['precision']}, "
                       f"recall {fg['recall']}, F {fg['f_measure']} (shadow as negative: {fg['f_measure_shadow_negative']})")
            for name, c in result["counts"].items():
                typer.echo(f"  {name} {result['lines'][name]}: pipeline {c['pipeline']} (in {c['in']}, out {c['out']}), "
                           f"ground truth {c['ground_truth']}, error {c['error_pct']}%")
        else:
            if source is None or not lines:
                raise typer.BadParameter("give --source and at least one --line (or --cdnet ARCHIVE)")
            result = count_source(source, lines, stride=stride, fps=fps)
            typer.echo(f"{source}: {result['frames']} frames at {result['fps']} fps")
            for name, c in result["counts"].items():
                typer.echo(f"  {name}: in {c['in']}, out {c['out']}, by class {c['by_class']}")
    except (SourceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if json_out:
        print_json_line(result)


def bench_video_cmd(
    source: Annotated[Path | None, typer.Option("--source", help="Real clip to resize to 640x360 (default: shared haar_video2.avi).")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=5, help="Interleaved runs per side (best kept).")] = 2,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Pipeline throughput vs decode + default MOG2 on the same 640x360 clip, one core."""
    from its.console import print_json_line
    from video.bench import bench_video
    from video.sources import SourceError

    clip = source or default_clip()
    try:
        result = bench_video(clip, repeats=repeats)
    except SourceError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{clip} at {result['resolution'][0]}x{result['resolution'][1]}: pipeline {result['pipeline_fps']} fps, "
               f"decode+MOG2 {result['decode_mog2_fps']} fps, ratio {result['ratio']}, "
               f"{result['realtime_streams_per_core_at_15fps']} real-time 15 fps streams per core")
    if json_out:
        print_json_line(result)


def video_run(
    config: Annotated[Path, typer.Option("--config", help="cameras.yaml (see video/data/cameras.example.yaml).")],
) -> None:
    """Run camera workers: counts, status and snapshots over MQTT until interrupted."""
    import signal
    import threading

    from its.cli import settings_or_exit
    from video.config import CameraConfigError, get_video_settings, load_cameras
    from video.worker import run_cameras

    try:
        cameras = load_cameras(config)
    except CameraConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    settings = settings_or_exit()
    runtime = None
    url = settings.mqtt_url
    if url is None:
        from its.runtime import start_runtime

        runtime = start_runtime(settings)
        url = runtime.settings.mqtt_url
    assert url is not None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    typer.echo(f"running {len(cameras.cameras)} camera(s) from {config}", err=True)
    try:
        run_cameras(cameras, url, settings.data_dir, get_video_settings(), stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if runtime is not None:
            runtime.stop()


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("video", "run", video_run),
    ("eval", "video", eval_video),
    ("bench", "video", bench_video_cmd),
]
