"""People crossing counting lines: the density map carried across each line by optical flow.

Counting people across a line without detecting them one by one (line-of-interest
counting): the people density ``rho`` (people per pixel², from the people counter's
density map, :mod:`video.people`) times the velocity ``v`` of the crowd normal to the
line, integrated along the line and over time, is the number of people who crossed it:

    crossings = integral over time and line of rho * (v . n) dl dt

The velocity is the dense optical flow (Farneback, OpenCV) between the frame of the
estimate and the frame just before it, averaged per density cell over the pixels that
move, weighted by their motion (so a person filling a third of a cell still moves at
their own speed), and split by sign: ``n`` is the line's unit normal pointing to its right
on screen, positive normal flow is ``in`` and negative ``out`` (the vehicle lines'
convention, :mod:`video.counting`), so people crossing one cell both ways each keep their
share (:func:`cell_flow`). A person
is counted when their head (where the density model puts them) crosses the line.

The flow needs consecutive frames close in time: with frames more than
:data:`MAX_GAP_S` apart a walker moves further than the flow can follow, and the camera
reports people present per zone only (``zone-only``). Each estimate stands for the stream
time since the previous one, so with estimates on every frame the sum is the integral
above; with sparser estimates it is an unbiased but noisier sample of it.

Pure numpy/OpenCV; :class:`LineFlux` is the per-estimate kernel the camera worker calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from video.people_features import CellGrid

__all__ = ["FLOW_MARGIN_CELLS", "MAX_GAP_S", "MOVING_PX", "LineFlux", "cell_flow", "line_samples"]

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
U8 = npt.NDArray[np.uint8]

MAX_GAP_S = 0.25
"""Largest time between two consecutive frames for line crossings, s (>= 4 frames/s: a
walker at 1.5 m/s moves less than 0.4 m, about a body width, between them)."""
MOVING_PX = 0.5
"""A model pixel moves when its flow is longer than this, model pixels per frame."""
FLOW_MARGIN_CELLS = 2
"""The flow is computed over the lines' cells and this many cells around them (a narrower
window loses walkers entering it: -35 % on generated walkers with 1 cell, -3 % with 2)."""


@dataclass(frozen=True)
class _Samples:
    """Points along one line at model resolution, each with its cell and length share."""

    row: npt.NDArray[np.int64]
    col: npt.NDArray[np.int64]
    dl: float  # model pixels of line per sample
    normal: tuple[float, float]  # unit normal to the line's right on screen (model pixels)


def line_samples(points: tuple[float, float, float, float], grid: CellGrid) -> _Samples:
    """Sample a directed line given in frame pixels every ~1 model pixel.

    Returns the cell ``(row, col)`` of each sample, the line length per sample (model
    pixels) and the line's unit right-hand normal in model pixels.
    """
    sx, sy = grid.scale
    x1, y1, x2, y2 = points[0] * sx, points[1] * sy, points[2] * sx, points[3] * sy
    dx, dy = x2 - x1, y2 - y1
    length = float(np.hypot(dx, dy))
    if length <= 0:
        raise ValueError("a line needs two distinct end points")
    n = max(1, int(np.ceil(length)))
    f = (np.arange(n) + 0.5) / n
    mw, mh = grid.model_size
    xs = np.clip(x1 + f * dx, 0, mw - 1e-6)
    ys = np.clip(y1 + f * dy, 0, mh - 1e-6)
    row = np.clip((ys // grid.cell).astype(np.int64), 0, grid.rows - 1)
    col = np.clip((xs // grid.cell).astype(np.int64), 0, grid.cols - 1)
    return _Samples(row, col, length / n, (-dy / length, dx / length))


def cell_flow(prev: U8, grey: U8, cell: int, normal: tuple[float, float],
              moving_px: float = MOVING_PX) -> tuple[F32, F32]:
    """Flow of each cell along a line's normal, split by direction, model pixels per frame.

    Farneback optical flow from ``prev`` to ``grey`` (model-resolution grey images whose
    sides are multiples of ``cell``); each pixel moving more than ``moving_px`` weighs as far
    as it moves (the flow's smooth halo around a walker weighs little). A cell's ``in`` rate
    is the weighted mean over its moving pixels of the positive normal flow, its ``out``
    rate that of the negative one, so two people crossing one cell in opposite directions
    each keep their share.

    Returns
    -------
    (ndarray, ndarray)
        ``in`` and ``out`` rates per cell, ``(rows, cols)``, >= 0.
    """
    flow = cv2.calcOpticalFlowFarneback(prev, grey, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    return _directional(flow, cell, normal, moving_px)


def _directional(flow: npt.NDArray[np.generic], cell: int, normal: tuple[float, float], moving_px: float) -> tuple[F32, F32]:
    f = np.asarray(flow, dtype=np.float32)
    mag = np.hypot(f[..., 0], f[..., 1])
    weight = np.where(mag > moving_px, mag, 0.0).astype(np.float32)
    along = f[..., 0] * normal[0] + f[..., 1] * normal[1]
    size = (f.shape[1] // cell, f.shape[0] // cell)
    total = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    out = []
    for part in (np.maximum(along, 0.0), np.maximum(-along, 0.0)):
        mean = cv2.resize((weight * part).astype(np.float32), size, interpolation=cv2.INTER_AREA)
        out.append(np.where(total > 0, mean / np.maximum(total, 1e-9), 0.0).astype(np.float32))
    return out[0], out[1]


class LineFlux:
    """People crossing each line, per direction, from density maps and optical flow.

    The flow is computed only over the cells the lines pass through and
    :data:`FLOW_MARGIN_CELLS` around them.

    Parameters
    ----------
    grid : CellGrid
        The people model's geometry (frame size, cells).
    lines : mapping of line id to (x1, y1, x2, y2)
        Directed lines in frame pixels.
    """

    def __init__(self, grid: CellGrid, lines: Mapping[str, tuple[float, float, float, float]]) -> None:
        if not lines:
            raise ValueError("LineFlux needs at least one line")
        self.grid = grid
        self.lines = {k: line_samples(p, grid) for k, p in lines.items()}
        rows = np.concatenate([s.row for s in self.lines.values()])
        cols = np.concatenate([s.col for s in self.lines.values()])
        m = FLOW_MARGIN_CELLS
        self.r0, self.r1 = max(int(rows.min()) - m, 0), min(int(rows.max()) + m + 1, grid.rows)
        self.c0, self.c1 = max(int(cols.min()) - m, 0), min(int(cols.max()) + m + 1, grid.cols)

    def update(self, prev: U8, grey: U8, density: F32, gap_s: float, span_s: float) -> dict[tuple[str, str], float]:
        """People crossing each line in each direction during ``span_s`` seconds.

        Parameters
        ----------
        prev, grey : ndarray (h, w) of uint8
            Model-resolution grey images of the frame before and of the estimate's frame.
        density : ndarray (rows, cols)
            People per cell in the estimate's frame.
        gap_s : float
            Time between ``prev`` and ``grey``, s (> 0).
        span_s : float
            Stream time the estimate stands for (since the previous estimate), s.

        Returns
        -------
        dict
            ``{(line_id, "in" | "out"): people}`` (>= 0, fractional).
        """
        if gap_s <= 0:
            raise ValueError("gap_s must be > 0")
        c = self.grid.cell
        ys, xs = slice(self.r0 * c, self.r1 * c), slice(self.c0 * c, self.c1 * c)
        flow = cv2.calcOpticalFlowFarneback(prev[ys, xs], grey[ys, xs], None, 0.5, 3, 15, 3, 5, 1.2, 0)
        rho = np.maximum(np.asarray(density, dtype=np.float64), 0.0) / float(c * c)  # people per model px²
        scale = span_s / gap_s
        out: dict[tuple[str, str], float] = {}
        for line_id, s in self.lines.items():
            rate_in, rate_out = _directional(flow, c, s.normal, MOVING_PX)
            r, k = s.row - self.r0, s.col - self.c0
            mass = rho[s.row, s.col] * s.dl * scale
            out[(line_id, "in")] = float((mass * rate_in[r, k]).sum())
            out[(line_id, "out")] = float((mass * rate_out[r, k]).sum())
        return out
