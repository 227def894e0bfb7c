"""Throughput benchmark: the full counting pipeline versus the same work without counting.

Every measurement reads the same 640x360 clip (a real clip from the shared data resized
once into a temporary MJPG file) on one OpenCV thread, interleaved and repeated, keeping
each one's best run so that a busy machine penalises no side more than another.

- ``pipeline``: decode, resize to the model width, background model, cleaning, blobs,
  tracking, line counting, aggregation.
- ``baseline`` (equal work below the pipeline's own stages): decode, resize to the same model
  width (``INTER_AREA``) and run the same background subtractor with the same settings
  (:meth:`video.foreground.ForegroundModel.subtract`). ``ratio`` = pipeline / baseline.
- ``decode_mog2`` (kept for continuity with earlier reports): decode + a default MOG2 on the
  full 640x360 frames, a heavier job than the pipeline's.
- ``people`` (when annotated Mall frames are available): the people counter
  (:class:`video.people.PeopleCounter`: JPEG decode, grey model image, features, density
  model) on 640x480 frames it was not calibrated on.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from video.foreground import ForegroundConfig, ForegroundModel
from video.pipeline import CountingPipeline, LineSpec, PipelineConfig
from video.sources import SourceError, VideoSource

__all__ = ["bench_people", "bench_video", "make_bench_clip"]

BENCH_SIZE = (640, 360)


def make_bench_clip(source: Path, target: Path, size: tuple[int, int] = BENCH_SIZE) -> int:
    """Write ``source`` resized to ``size`` (w, h) as an MJPG AVI; return the frame count."""
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise SourceError(f"cannot open video {source}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    n = 0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR))
            n += 1
    finally:
        cap.release()
        writer.release()
    if n == 0:
        raise SourceError(f"no frames in {source}")
    return n


class _Clock:
    """Elapsed and process CPU time since creation."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, n: int) -> tuple[float, float]:
        """``n`` items per elapsed second and per CPU second."""
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return n / max(wall, 1e-9), n / max(cpu, 1e-9)


def _decode_mog2(clip: Path) -> tuple[float, float]:
    cap = cv2.VideoCapture(str(clip))
    mog2 = cv2.createBackgroundSubtractorMOG2()
    n = 0
    clock = _Clock()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        mog2.apply(frame)
        n += 1
    cap.release()
    return clock.rates(n)


def _decode_background(clip: Path, config: ForegroundConfig) -> tuple[float, float]:
    cap = cv2.VideoCapture(str(clip))
    model = ForegroundModel(config)
    n = 0
    clock = _Clock()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        model.subtract(np.asarray(frame, dtype=np.uint8))
        n += 1
    cap.release()
    return clock.rates(n)


def bench_people(mall: Path, *, calibration: tuple[int, int] = (1, 200), frames: tuple[int, int] = (201, 400),
                 repeats: int = 2) -> dict[str, Any]:
    """People-counter throughput on annotated Mall frames (``frames.tar``, ``counts.csv``,
    ``heads.csv``, ``roi.png`` in ``mall``): calibrate on ``calibration``, count ``frames``.

    Returns
    -------
    dict
        ``people_fps`` (best elapsed-time rate of ``repeats`` runs), ``people_fps_cpu``
        (per second of CPU time, one thread), ``people_frames``, ``people_resolution``.
    """
    from video.people import PeopleCounter
    from video.people_data import calibrate, load_annotated, read_roi, single_thread

    train = load_annotated(mall / "frames.tar", mall / "counts.csv", mall / "heads.csv", calibration)
    test = load_annotated(mall / "frames.tar", mall / "counts.csv", None, frames)
    model = calibrate(train, read_roi(mall / "roi.png"))
    best = best_cpu = 0.0
    with single_thread():
        for _ in range(max(repeats, 1)):
            counter = PeopleCounter(model)
            clock = _Clock()
            for i in range(len(test)):
                counter.update(test.decode(i))
            wall, cpu = clock.rates(len(test))
            best, best_cpu = max(best, wall), max(best_cpu, cpu)
    return {"people_fps": round(best, 1), "people_fps_cpu": round(best_cpu, 1), "people_frames": len(test),
            "people_resolution": list(model.grid.frame_size)}


def _pipeline(clip: Path, config: PipelineConfig) -> tuple[float, float]:
    pipeline = CountingPipeline(config)
    clock = _Clock()
    with VideoSource(str(clip)) as frames:
        for frame in frames:
            pipeline.process(frame)
    return clock.rates(pipeline.frames)


def bench_video(source: Path, *, repeats: int = 2, config: PipelineConfig | None = None,
                people: Path | None = None) -> dict[str, Any]:
    """Measure pipeline and baseline throughput on ``source`` resized to 640x360.

    Parameters
    ----------
    source : Path
        A real video clip.
    repeats : int
        Interleaved runs of each side; the best is kept.
    config : PipelineConfig, optional
        Pipeline settings; default: two counting lines across the frame.
    people : Path, optional
        Folder of the annotated Mall frames: also measure the people counter
        (:func:`bench_people`).

    Returns
    -------
    dict
        ``{"resolution": [w, h], "frames", "model_width", "pipeline_fps", "baseline_fps",
        "baseline", "ratio", "decode_mog2_fps", "realtime_streams_per_core_at_15fps",
        "pipeline_fps_cpu", "baseline_fps_cpu", "ratio_cpu"}`` and the :func:`bench_people`
        keys; rates in frames/s on one OpenCV thread, per elapsed second (best run) and per
        second of CPU time (``*_cpu``: unaffected by other processes on a shared machine).
    """
    w, h = BENCH_SIZE
    cfg = config or PipelineConfig(lines=(
        LineSpec("line-0", (0.0, h * 0.6, float(w), h * 0.6)),
        LineSpec("line-1", (0.0, h * 0.4, float(w), h * 0.4)),
    ))
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="its-bench-video-") as tmp:
            clip = Path(tmp) / "clip_640x360.avi"
            frames = make_bench_clip(Path(source), clip)
            runs: dict[str, list[tuple[float, float]]] = {"base": [], "mog2": [], "pipe": []}
            for _ in range(max(repeats, 1)):
                runs["base"].append(_decode_background(clip, cfg.foreground))
                runs["mog2"].append(_decode_mog2(clip))
                runs["pipe"].append(_pipeline(clip, cfg))
    finally:
        cv2.setNumThreads(threads)
    fg = cfg.foreground
    base, base_cpu = (max(r[k] for r in runs["base"]) for k in (0, 1))
    pipe, pipe_cpu = (max(r[k] for r in runs["pipe"]) for k in (0, 1))
    mog2 = max(r[0] for r in runs["mog2"])
    result: dict[str, Any] = {
        "resolution": [w, h],
        "frames": frames,
        "source": str(source),
        "model_width": fg.model_width,
        "pipeline_fps": round(pipe, 1),
        "baseline_fps": round(base, 1),
        "baseline": f"decode + INTER_AREA resize to {fg.model_width} px + {fg.method.upper()} "
                    f"(history {fg.history}, threshold {fg.threshold:g}, shadows)",
        "ratio": round(pipe / base, 3),
        "decode_mog2_fps": round(mog2, 1),
        "realtime_streams_per_core_at_15fps": round(pipe / 15.0, 1),
        "pipeline_fps_cpu": round(pipe_cpu, 1),
        "baseline_fps_cpu": round(base_cpu, 1),
        "ratio_cpu": round(pipe_cpu / base_cpu, 3),
    }
    if people is not None:
        result.update(bench_people(people, repeats=repeats))
    return result
