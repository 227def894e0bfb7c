"""Throughput benchmark: full counting pipeline versus decoding + a default MOG2 alone.

Both measurements read the same 640x360 clip (a real clip from the shared data resized
once into a temporary MJPG file) on one OpenCV thread, interleaved and repeated, keeping
each one's best run so that a busy machine penalises neither side more than the other.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import cv2

from video.pipeline import CountingPipeline, LineSpec, PipelineConfig
from video.sources import SourceError, VideoSource

__all__ = ["bench_video", "make_bench_clip"]

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


def _decode_mog2(clip: Path) -> tuple[int, float]:
    cap = cv2.VideoCapture(str(clip))
    mog2 = cv2.createBackgroundSubtractorMOG2()
    n = 0
    began = time.perf_counter()
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        mog2.apply(frame)
        n += 1
    elapsed = time.perf_counter() - began
    cap.release()
    return n, n / elapsed


def _pipeline(clip: Path, config: PipelineConfig) -> tuple[int, float]:
    pipeline = CountingPipeline(config)
    began = time.perf_counter()
    with VideoSource(str(clip)) as frames:
        for frame in frames:
            pipeline.process(frame)
    elapsed = time.perf_counter() - began
    return pipeline.frames, pipeline.frames / elapsed


def bench_video(source: Path, *, repeats: int = 2, config: PipelineConfig | None = None) -> dict[str, Any]:
    """Measure pipeline and decode+MOG2 throughput on ``source`` resized to 640x360.

    Parameters
    ----------
    source : Path
        A real video clip.
    repeats : int
        Interleaved runs of each side; the best is kept.
    config : PipelineConfig, optional
        Pipeline settings; default: two counting lines across the frame.

    Returns
    -------
    dict
        ``{"resolution": [w, h], "frames", "pipeline_fps", "decode_mog2_fps", "ratio",
        "realtime_streams_per_core_at_15fps", "model_width"}``; rates in frames/s on one
        OpenCV thread.
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
            base = pipe = 0.0
            for _ in range(max(repeats, 1)):
                base = max(base, _decode_mog2(clip)[1])
                pipe = max(pipe, _pipeline(clip, cfg)[1])
    finally:
        cv2.setNumThreads(threads)
    return {
        "resolution": [w, h],
        "frames": frames,
        "source": str(source),
        "model_width": cfg.foreground.model_width,
        "pipeline_fps": round(pipe, 1),
        "decode_mog2_fps": round(base, 1),
        "ratio": round(pipe / base, 3),
        "realtime_streams_per_core_at_15fps": round(pipe / 15.0, 1),
    }
