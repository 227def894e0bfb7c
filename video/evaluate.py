"""Run the counting pipeline over a file or image sequence and report its counts."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from video.pipeline import CountingPipeline, LineSpec, PipelineConfig
from video.sources import SourceError, open_source

__all__ = ["FrameSizeCheck", "check_lines", "count_source", "parse_line", "segment_in_frame"]


def parse_line(text: str, index: int = 0) -> LineSpec:
    """Parse ``"X1,Y1,X2,Y2"`` (frame pixels) into a :class:`LineSpec` named ``line-<index>``."""
    parts = text.split(",")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f"--line {text!r}: expected four numbers X1,Y1,X2,Y2") from None
    if len(values) != 4:
        raise ValueError(f"--line {text!r}: expected four numbers X1,Y1,X2,Y2, got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"--line {text!r}: the four numbers must be finite pixel coordinates")
    if values[:2] == values[2:]:
        raise ValueError(f"--line {text!r}: the two end points coincide")
    return LineSpec(f"line-{index}", (values[0], values[1], values[2], values[3]))


def segment_in_frame(points: Sequence[float], size: tuple[int, int], samples: int = 64) -> bool:
    """Whether the segment ``(x1, y1, x2, y2)`` (frame pixels) passes through a ``(width, height)`` frame.

    Pure: ``samples + 1`` evenly spaced points of the segment are tested against
    ``[0, width] x [0, height]`` (pixels).
    """
    x1, y1, x2, y2 = (float(v) for v in points[:4])
    w, h = size
    for i in range(samples + 1):
        f = i / samples
        x, y = x1 + f * (x2 - x1), y1 + f * (y2 - y1)
        if 0.0 <= x <= w and 0.0 <= y <= h:
            return True
    return False


def check_lines(lines: Sequence[LineSpec], size: tuple[int, int], source: str | Path) -> None:
    """Raise :class:`ValueError` naming the first line that misses a ``(width, height)`` frame (pixels).

    A line drawn for another resolution would otherwise count nothing, silently.
    """
    for spec in lines:
        if not segment_in_frame(spec.points, size):
            x1, y1, x2, y2 = spec.points
            raise ValueError(f"{source}: line {spec.line_id} ({x1:g},{y1:g})-({x2:g},{y2:g}) lies outside the "
                             f"{size[0]}x{size[1]} frame (lines are in frame pixels of this source)")


class FrameSizeCheck:
    """Remembers the first frame's size and refuses a frame of another size.

    Parameters
    ----------
    source : str or Path
        Named in the error.
    """

    def __init__(self, source: str | Path) -> None:
        self.source = source
        self.size: tuple[int, int] | None = None

    def __call__(self, image_shape: tuple[int, ...], index: int) -> bool:
        """True for the first frame; raise :class:`SourceError` when frame ``index`` (0-based) changes size."""
        size = (int(image_shape[1]), int(image_shape[0]))
        if self.size is None:
            self.size = size
            return True
        if size != self.size:
            raise SourceError(f"{self.source}: frame {index + 1} is {size[0]}x{size[1]}, the first frame "
                              f"{self.size[0]}x{self.size[1]} (all frames of a source must have one size)")
        return False


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

    Raises
    ------
    SourceError
        The source cannot be read, yields no frame, or changes frame size.
    ValueError
        A line misses the frame entirely (drawn for another resolution).
    """
    base = config or PipelineConfig()
    cfg = replace(base, lines=tuple(lines))
    pipeline = CountingPipeline(cfg)
    sized = FrameSizeCheck(source)
    began = time.perf_counter()
    with open_source(source, stride=stride, fps=fps) as frames:
        for frame in frames:
            if sized(frame.image.shape, frame.index):
                check_lines(cfg.lines, (frame.image.shape[1], frame.image.shape[0]), source)
            pipeline.process(frame)
            if max_frames is not None and pipeline.frames >= max_frames:
                break
    elapsed = time.perf_counter() - began
    if pipeline.frames == 0:
        raise SourceError(f"{source}: no frame could be read")
    return {
        "frames": pipeline.frames,
        "fps": round(pipeline.frames / max(elapsed, 1e-9), 1),
        "counts": pipeline.counts(),
    }
