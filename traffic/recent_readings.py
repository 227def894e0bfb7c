"""Each segment's own recent readings: a robust level, and a check of a model against it.

Sensors fail in ways the training days need not show: a loop detector stuck at one value
for hours, or one reading far above its usual free flow all night. A model learnt on
healthy days pulls such a segment back to what its neighbours and its history suggest,
and keeps doing so however often the segment's own readings say otherwise. Two remedies,
both from the segment's last readings only (kept by
:meth:`traffic.learned.SegmentModelState.recent_before`):

* :func:`recent_level`: the median and median absolute deviation of the segment's last
  ``k`` readings (a level that one stray reading does not move, and the reading noise), as
  model features;
* :class:`ReadingCheck`: at each reading, the absolute error of the model's estimate (as if
  the segment were hidden) and of the recent median are recorded; where, over the segment's
  last readings, the median has been clearly better than the model (mean error below
  ``ratio`` times the model's), the median replaces the model's estimate for that segment.
  On healthy segments the model wins and nothing changes.

Everything is arrays over segments (no per-segment Python loop). Speeds in any consistent
unit; times in s.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt

__all__ = ["ReadingCheck", "recent_level"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def recent_level(recent: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Median and median absolute deviation of each row of ``recent`` ``(n, k)`` (NaN: no reading)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: a segment not read yet
        median = np.nanmedian(recent, axis=1)
        mad = np.nanmedian(np.abs(recent - median[:, None]), axis=1)
    return np.asarray(median, dtype=np.float64), np.asarray(mad, dtype=np.float64)


class ReadingCheck:
    """Per segment, the model's and the recent median's errors at its last ``k`` readings.

    Parameters
    ----------
    n : segments.
    k : readings remembered per segment; a decision needs at least ``k // 2``.
    ratio : the median replaces the model where its mean error is below ``ratio`` times the model's.
    """

    def __init__(self, n: int, k: int = 12, ratio: float = 0.5) -> None:
        if k < 2 or not 0.0 < ratio <= 1.0:
            raise ValueError("k must be at least 2 and ratio in (0, 1]")
        self.k, self.ratio = k, ratio
        self.errors: FloatArray = np.full((n, k, 2), np.nan)  # newest first; [model, median]

    def record(self, read: BoolArray, reading: FloatArray, model: FloatArray, median: FloatArray) -> None:
        """Score the estimates ``(n,)`` made as if hidden against the readings where ``read``
        (segments without a recent median are not scored)."""
        ok = read & np.isfinite(median) & np.isfinite(model)
        new = np.stack([np.abs(reading[ok] - model[ok]), np.abs(reading[ok] - median[ok])], axis=1)
        self.errors[ok] = np.concatenate([new[:, None, :], self.errors[ok, :-1]], axis=1)

    def median_wins(self) -> BoolArray:
        """Segments where the recent median has been clearly better than the model."""
        scored = np.isfinite(self.errors[:, :, 0])
        count = scored.sum(axis=1)
        total = np.where(scored[..., None], self.errors, 0.0).sum(axis=1)
        return (count >= self.k // 2) & (total[:, 1] < self.ratio * total[:, 0])

    def choose(self, model: FloatArray, median: FloatArray) -> FloatArray:
        """The model's estimates, with the recent median where it has been clearly better."""
        return np.where(self.median_wins() & np.isfinite(median), median, model)
