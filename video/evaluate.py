"""Run the counting pipeline over a file or image sequence and report its counts."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from video.pipeline import CountingPipeline, LineSpec, PipelineConfig
from video.sources import open_source

__all__ = ["count_source", "parse_line"]


def parse_line(text: str, index: int = 0) -> LineSpec:
    """Parse ``"X1,Y1,X2,Y2"`` (frame pixels) into a :class:`LineSpec` named ``line-<index>``."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--line {text!r}: expected four numbers X1,Y1,X2,Y2") from None
    if len(values) != 4:
        raise ValueError(f"--line {text!r}: expected four numbers X1,Y1,X2,Y2, got {len(values)}")
    if values[:2] == values[2:]:
        raise ValueError(f"--line {text!r}: the two end points coincide")
    return LineSpec(f"line-{index}", (values[0], values[1], values[2], values[3]))


def count_source(
    source: str | Path,
    lines: Sequence[LineSpec],
    config: PipelineConfig | None = None,
    *,
    stride: int = 1,
    max_frames: int | None = None,
    fps: float | None = None,
) -> dict[str, Any]:
    """Count vehicles crossing ``lines`` in a video file, image folder or frame archive.

    Parameters
    ----------
    source : str or Path
        Video file, folder of images, ``.tar(.gz)`` of images, or stream URL.
    lines : sequence of LineSpec
        Counting lines in the source's pixel coordinates.
    config : PipelineConfig, optional
        Pipeline settings (its ``lines`` are replaced).
    stride : int
        Process one frame in ``stride``.
    max_frames : int, optional
        Stop after this many processed frames.
    fps : float, optional
        Frame rate of image sequences, frames/s.

    Returns
    -------
    dict
        ``{"frames": processed frames, "fps": processing rate (frames/s), "counts": {line_id:
        {"in", "out", "by_class"}}}``.
    """
    base = config or PipelineConfig()
    cfg = replace(base, lines=tuple(lines))
    pipeline = CountingPipeline(cfg)
    began = time.perf_counter()
    with open_source(source, stride=stride, fps=fps) as frames:
        for frame in frames:
            pipeline.process(frame)
            if max_frames is not None and pipeline.frames >= max_frames:
                break
    elapsed = time.perf_counter() - began
    return {
        "frames": pipeline.frames,
        "fps": round(pipeline.frames / max(elapsed, 1e-9), 1),
        "counts": pipeline.counts(),
    }
