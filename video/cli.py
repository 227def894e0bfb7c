"""``its`` commands of the video domain: thin wrappers over library functions."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = [
    "COMMANDS",
    "bench_cameras_cmd",
    "bench_video_cmd",
    "calibrate_people_cmd",
    "cameras_add",
    "cameras_list",
    "cameras_remove",
    "default_clip",
    "eval_people",
    "eval_speeds",
    "eval_video",
    "video_run",
]


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


def eval_speeds(
    config: Annotated[Path, typer.Option("--config", help="cameras.yaml with the camera's ground calibration.")],
    camera: Annotated[str, typer.Option("--camera", help="Camera id (its source must be a file, folder or archive).")],
    max_frames: Annotated[int | None, typer.Option("--max-frames", min=1, help="Stop after this many frames.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Speed (km/h) of every vehicle crossing the camera's lines, and the per-interval means."""
    from its.console import print_json_line
    from video.config import CameraConfigError, load_cameras
    from video.sources import SourceError
    from video.speeds import clip_speeds

    try:
        cams = {c.id: c for c in load_cameras(config).cameras}
        if camera not in cams:
            raise ValueError(f"no camera {camera!r} in {config} (cameras: {sorted(cams)})")
        result = clip_speeds(cams[camera].model_copy(update={"loop": False}), max_frames=max_frames)
    except (CameraConfigError, SourceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{camera}: {result['frames']} frames, {len(result['vehicles'])} vehicle speeds")
    for key, s in result["summary"].items():
        typer.echo(f"  {key}: {s['n']} vehicles, median {s['median_kmh']} km/h (p10 {s['p10_kmh']}, p90 {s['p90_kmh']})")
    if json_out:
        print_json_line(result)


def bench_video_cmd(
    source: Annotated[Path | None, typer.Option("--source", help="Real clip to resize to 640x360 (default: shared haar_video2.avi).")] = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, max=5, help="Interleaved runs per side (best kept).")] = 2,
    people: Annotated[Path | None, typer.Option("--people", help="Annotated Mall folder for the people counter's rate (default: the shared data's, when present).")] = None,
    no_people: Annotated[bool, typer.Option("--no-people", help="Skip the people counter.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Pipeline throughput vs the same decode + resize + background model alone (one core),
    and the people counter's rate."""
    from its.console import print_json_line
    from video.bench import bench_video
    from video.sources import SourceError

    clip = source or default_clip()
    mall = people or default_clip("mall")
    try:
        result = bench_video(clip, repeats=repeats, people=None if no_people or not (mall / "frames.tar").is_file() else mall)
    except (SourceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{clip} at {result['resolution'][0]}x{result['resolution'][1]}: pipeline {result['pipeline_fps']} fps, "
               f"baseline ({result['baseline']}) {result['baseline_fps']} fps, ratio {result['ratio']}, "
               f"{result['realtime_streams_per_core_at_15fps']} real-time 15 fps streams per core; "
               f"decode + default MOG2 at full size {result['decode_mog2_fps']} fps")
    if "people_fps" in result:
        typer.echo(f"people counter at {result['people_resolution'][0]}x{result['people_resolution'][1]}: "
                   f"{result['people_fps']} fps ({result['people_fps_cpu']} per CPU second)")
    if json_out:
        print_json_line(result)


def bench_cameras_cmd(
    workers: Annotated[int, typer.Option("--workers", min=2, max=16, help="`its video run` processes.")] = 3,
    kill: Annotated[int, typer.Option("--kill", min=1, help="Workers killed (SIGKILL) once the cameras are spread.")] = 1,
    cameras: Annotated[int, typer.Option("--cameras", min=1, max=64, help="Registered cameras (one looping clip each).")] = 6,
    interval_s: Annotated[int, typer.Option("--interval-s", min=1, max=60, help="Counting interval, s.")] = 5,
    lease_s: Annotated[float | None, typer.Option("--lease-s", min=1.0, help="Lease time, s (default ITS_VIDEO_LEASE_S).")] = None,
    source: Annotated[Path | None, typer.Option("--source", help="Clip to loop (default: a rendered street scene).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Camera workers sharing registered cameras through leases: kill some, measure the take-over."""
    from its.commands import settings_or_exit
    from its.console import print_json_line
    from its.runtime import start_runtime
    from video.config import get_video_settings
    from video.fleet_bench import run_cameras_bench

    settings = settings_or_exit()
    rt = start_runtime(settings)
    try:
        result = run_cameras_bench(rt.settings.database_url or "", rt.settings.mqtt_url or "", workers=workers,
                                   kill=kill, cameras=cameras, interval_s=interval_s,
                                   lease_s=lease_s or get_video_settings().lease_s, clip=source)
    except (RuntimeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        rt.stop()
    typer.echo(f"{result['cameras']} cameras on {result['workers']} workers {result['spread_before']}, "
               f"{result['killed']} killed: {result['orphaned_cameras']} taken over in at most "
               f"{result['takeover_s_max']} s (lease {result['lease_s']:g} s, bound {result['takeover_bound_s']} s), "
               f"now {result['spread_after']}; {result['lost_intervals']} of {result['measured_intervals']} "
               f"{result['interval_s']} s intervals lost, {result['duplicated_intervals']} duplicated; "
               f"fps per surviving worker {result['fps_per_worker']}")
    if json_out:
        print_json_line(result)


def _heads_beside(counts: Path, heads: Path | None, no_heads: bool) -> Path | None:
    """``--heads`` if given, else ``heads.csv`` next to the counts file when it exists."""
    if no_heads:
        return None
    if heads is not None:
        return heads
    beside = counts.parent / "heads.csv"
    return beside if beside.is_file() else None


def eval_people(
    train_frames: Annotated[Path, typer.Option("--train-frames", help="Calibration frames: .tar(.gz) or image folder.")],
    train_counts: Annotated[Path, typer.Option("--train-counts", help="Calibration counts CSV (frame,count): the frames fitted on.")],
    frames: Annotated[Path, typer.Option("--frames", help="Frames to score: .tar(.gz) or image folder.")],
    counts: Annotated[Path, typer.Option("--counts", help="Counts CSV (frame,count) of the frames to score.")],
    train_heads: Annotated[Path | None, typer.Option("--train-heads", help="Head positions CSV (frame,x,y); default: heads.csv beside --train-counts if present.")] = None,
    train_range: Annotated[str | None, typer.Option("--train-range", help="Fit only on frames FIRST-LAST, e.g. 1-600.")] = None,
    frame_range: Annotated[str | None, typer.Option("--range", help="Score only frames FIRST-LAST, e.g. 601-800.")] = None,
    roi: Annotated[Path | None, typer.Option("--roi", help="Region of interest image (white = counted).")] = None,
    no_heads: Annotated[bool, typer.Option("--no-heads", help="Ignore head positions: counts-only (row-band ridge) model.")] = False,
    save_model: Annotated[Path | None, typer.Option("--save-model", help="Also write the fitted model (.npz).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Fit a people counter on annotated frames and score it on frames it never saw."""
    import numpy as np

    from its.console import print_json_line
    from video.people_data import calibrate, evaluate, load_annotated, parse_range, read_roi
    from video.sources import SourceError

    try:
        heads = _heads_beside(train_counts, train_heads, no_heads)
        train = load_annotated(train_frames, train_counts, heads, parse_range(train_range))
        test = load_annotated(frames, counts, None, parse_range(frame_range))
        if train_frames.resolve() == frames.resolve():
            overlap = np.intersect1d(train.numbers, test.numbers)
            if len(overlap):
                raise ValueError(f"{len(overlap)} scored frame(s) were fitted on (e.g. {overlap[0]}): "
                                 "give disjoint --train-range and --range")
        model = calibrate(train, read_roi(roi))
        result: dict[str, Any] = evaluate(model, test)
        result.update({"train_frames": len(train), "train_first": int(train.numbers[0]), "train_last": int(train.numbers[-1])})
        if save_model is not None:
            result["model_path"] = str(model.save(save_model))
    except (SourceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"people ({result['model']} model, fitted on {result['train_frames']} frames "
               f"{result['train_first']}-{result['train_last']}): {result['frames']} frames "
               f"{result['first_frame']}-{result['last_frame']} scored, MAE {result['mae']} "
               f"({result['mae_pct']} % of mean {result['mean_count']}), RMSE {result['rmse']}, "
               f"bias {result['bias']}, {result['fps']} frames/s on one core")
    if json_out:
        print_json_line(result)


def calibrate_people_cmd(
    frames: Annotated[Path, typer.Option("--frames", help="Annotated frames: .tar(.gz) or image folder.")],
    counts: Annotated[Path, typer.Option("--counts", help="Counts CSV (frame,count).")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.npz), for the camera's people_model.")],
    heads: Annotated[Path | None, typer.Option("--heads", help="Head positions CSV (frame,x,y); default: heads.csv beside --counts if present.")] = None,
    frame_range: Annotated[str | None, typer.Option("--range", help="Use only frames FIRST-LAST.")] = None,
    roi: Annotated[Path | None, typer.Option("--roi", help="Region of interest image (white = counted).")] = None,
    no_heads: Annotated[bool, typer.Option("--no-heads", help="Counts-only (row-band ridge) model.")] = False,
    folds: Annotated[int, typer.Option("--folds", min=0, help="First estimate the error by blocked K-fold cross-validation (0: skip).")] = 0,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Calibrate a camera's people counter from a few hundred annotated frames."""
    from its.console import print_json_line
    from video.people_data import calibrate, cross_validate, load_annotated, parse_range, read_roi
    from video.sources import SourceError

    try:
        train = load_annotated(frames, counts, _heads_beside(counts, heads, no_heads), parse_range(frame_range))
        mask = read_roi(roi)
        result: dict[str, Any] = cross_validate(train, mask, folds=folds, use_heads=train.heads is not None) if folds else {}
        model = calibrate(train, mask)
        path = model.save(out)
    except (SourceError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    result = {"model_path": str(path), "model": model.kind, "frames": len(train), "first_frame": int(train.numbers[0]),
              "last_frame": int(train.numbers[-1]), "mean_count": model.meta["mean_count"], **result}
    cv = f", cross-validated MAE {result['cv_mae']} ({result['cv_mae_pct']} %)" if folds else ""
    typer.echo(f"wrote {path}: {model.kind} model from {len(train)} frames{cv}")
    if json_out:
        print_json_line(result)


def video_run(
    config: Annotated[Path | None, typer.Option("--config", help="cameras.yaml (see video/data/cameras.example.yaml); without it, the cameras registered in the database (`its cameras add`), shared with the other workers through leases.")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve Prometheus /metrics (frames, online) on this port; with ITS_VIDEO_PROCESSES=1 it covers every camera.")] = None,
) -> None:
    """Run camera workers: counts, status and snapshots over MQTT until interrupted."""
    import signal
    import threading

    from its.commands import settings_or_exit
    from its.metrics import serve_metrics
    from video.config import CameraConfigError, get_video_settings, load_cameras
    from video.worker import run_cameras

    cameras = None
    if config is not None:
        try:
            cameras = load_cameras(config)
        except CameraConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    settings = settings_or_exit()
    serve_metrics(metrics_port or settings.metrics_port)
    runtime = None
    if settings.mqtt_url is None or (cameras is None and settings.database_url is None):
        from its.runtime import start_runtime

        runtime = start_runtime(settings)
        settings = runtime.settings
    url = settings.mqtt_url
    assert url is not None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if cameras is not None:
            typer.echo(f"running {len(cameras.cameras)} camera(s) from {config}", err=True)
            run_cameras(cameras, url, settings.data_dir, get_video_settings(), stop)
        else:
            _run_leased(settings, url, stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        if runtime is not None:
            runtime.stop()


def _run_leased(settings: Any, url: str, stop: Any) -> None:
    """The registered cameras, claimed through leases, until ``stop``."""
    from its.db import Database, migrate
    from video.config import get_video_settings
    from video.fleet import LeasedCameras

    db = Database(settings.database_url or "", maxconn=4)
    try:
        migrate(db)
        fleet = LeasedCameras(db, url, settings.data_dir, get_video_settings())
        typer.echo(f"worker {fleet.worker_id}: claiming registered cameras (lease "
                   f"{fleet.settings.lease_s:g} s)", err=True)
        fleet.run(stop)
    finally:
        db.close()


def cameras_add(
    camera_id: Annotated[str | None, typer.Argument(help="Camera id (with SOURCE and --line); omit to add every camera of --config.")] = None,
    source: Annotated[str | None, typer.Argument(help="Video file, image folder, .tar(.gz) of frames or rtsp/http URL.")] = None,
    line: Annotated[list[str] | None, typer.Option("--line", help="Counting line X1,Y1,X2,Y2 in frame pixels (repeatable; ids line-0, line-1, ...).")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Add (or replace) every camera of this cameras.yaml.")] = None,
    loop: Annotated[bool, typer.Option("--loop", help="Replay a file forever.")] = False,
    interval_s: Annotated[int, typer.Option("--interval-s", min=1, max=3600, help="Counting interval, s.")] = 60,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Register cameras in the database for `its video run` workers (replaces same ids)."""
    from its.commands import platform_db, settings_or_exit
    from its.console import print_json_line
    from video.config import CameraConfigError, CamerasFile, load_cameras
    from video.registry import add_cameras

    try:
        if config is not None:
            if camera_id is not None:
                raise ValueError("give either --config or CAMERA_ID SOURCE --line ..., not both")
            cameras = load_cameras(config)
        else:
            if camera_id is None or source is None or not line:
                raise ValueError("give CAMERA_ID SOURCE and at least one --line X1,Y1,X2,Y2 (or --config FILE)")
            if "://" not in source:
                source = str(Path(source).resolve())
            lines = []
            for i, text in enumerate(line):
                parts = text.split(",")
                if len(parts) != 4:
                    raise ValueError(f"--line {text!r}: expected X1,Y1,X2,Y2")
                lines.append({"id": f"line-{i}", "points": [float(p) for p in parts]})
            cameras = CamerasFile.model_validate({"interval_s": interval_s, "cameras": [
                {"id": camera_id, "source": source, "loop": loop, "lines": lines}]})
    except (CameraConfigError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    with platform_db(settings_or_exit()) as db:
        ids = add_cameras(db, cameras)
    typer.echo(f"registered {len(ids)} camera(s): {', '.join(ids)}")
    if json_out:
        print_json_line({"added": ids})


def cameras_list(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object on the last line.")] = False,
) -> None:
    """Registered cameras, the worker holding each and when its lease expires."""
    from its.commands import platform_db, settings_or_exit
    from its.console import print_json_line
    from video.registry import list_cameras

    with platform_db(settings_or_exit()) as db:
        cams = list_cameras(db)
    for c in cams:
        held = f"held by {c.owner} ({c.expires_in_s:.1f} s left)" if c.owner else "not held"
        typer.echo(f"{c.camera_id:<20} {'synthetic ' if c.synthetic else ''}{c.source}  every {c.interval_s} s, {held}")
    if not cams:
        typer.echo("no cameras registered (its cameras add)")
    if json_out:
        print_json_line({"cameras": [c.row() for c in cams]})


def cameras_remove(
    camera_ids: Annotated[list[str], typer.Argument(help="Camera ids to remove.")],
) -> None:
    """Remove registered cameras; their workers stop them at the next lease renewal."""
    from its.commands import platform_db, settings_or_exit
    from video.registry import remove_cameras

    with platform_db(settings_or_exit()) as db:
        gone = remove_cameras(db, camera_ids)
    missing = sorted(set(camera_ids) - set(gone))
    typer.echo(f"removed {len(gone)} camera(s){': ' + ', '.join(gone) if gone else ''}")
    if missing:
        typer.echo(f"error: not registered: {', '.join(missing)}", err=True)
        raise typer.Exit(2)


COMMANDS: list[tuple[str, str, Callable[..., Any]]] = [
    ("video", "run", video_run),
    ("cameras", "add", cameras_add),
    ("cameras", "list", cameras_list),
    ("cameras", "remove", cameras_remove),
    ("eval", "video", eval_video),
    ("eval", "speeds", eval_speeds),
    ("eval", "people", eval_people),
    ("video", "calibrate-people", calibrate_people_cmd),
    ("bench", "video", bench_video_cmd),
    ("bench", "cameras", bench_cameras_cmd),
]
