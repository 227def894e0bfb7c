"""Array-of-records detections and blob extraction from foreground masks.

:class:`Detections` (after supervision's type of the same name) holds N detections as
parallel numpy arrays, validated once at construction; every later step (tracking,
counting, classification) works on whole arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

__all__ = ["Detections", "PerspectiveSize", "blobs_to_detections", "merge_fragments"]

Float = npt.NDArray[np.float64]
Int = npt.NDArray[np.int64]


class Detections:
    """N detections in frame pixel coordinates.

    Parameters accept any array-like; they are converted and validated once here.

    Attributes
    ----------
    xyxy : ndarray (N, 4) float64
        Boxes ``x1, y1, x2, y2``, pixels (x right, y down).
    area : ndarray (N,) float64
        Blob area, pixels² (the box area when not given, e.g. from a detector).
    class_id : ndarray (N,) int64
        Vehicle class index (see :data:`video.classify.CLASS_NAMES`), -1 unknown.
    confidence : ndarray (N,) float64
        Detector score 0..1 (1 for background-subtraction blobs).
    tracker_id : ndarray (N,) int64
        Track id, -1 before tracking.
    """

    __slots__ = ("area", "class_id", "confidence", "tracker_id", "xyxy")

    def __init__(
        self,
        xyxy: npt.ArrayLike = (),
        area: npt.ArrayLike | None = None,
        class_id: npt.ArrayLike | None = None,
        confidence: npt.ArrayLike | None = None,
        tracker_id: npt.ArrayLike | None = None,
    ) -> None:
        box: Float = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(box)
        if n and not np.all(np.isfinite(box)):
            raise ValueError("Detections.xyxy contains non-finite values")
        if n and np.any(box[:, 2:] < box[:, :2]):
            raise ValueError("Detections.xyxy needs x2 >= x1 and y2 >= y1")

        def col(name: str, value: npt.ArrayLike | None, dtype: type, default: float) -> npt.NDArray[Any]:
            if value is None:
                return np.full(n, default, dtype=dtype)
            arr: npt.NDArray[Any] = np.asarray(value, dtype=dtype).reshape(-1)
            if arr.shape != (n,):
                raise ValueError(f"Detections.{name} has {arr.shape[0]} entries, xyxy has {n}")
            return arr

        self.xyxy: Float = box
        self.area: Float = (
            (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]) if area is None else col("area", area, np.float64, 0.0)
        )
        self.class_id: Int = col("class_id", class_id, np.int64, -1)
        self.confidence: Float = col("confidence", confidence, np.float64, 1.0)
        self.tracker_id: Int = col("tracker_id", tracker_id, np.int64, -1)

    def __repr__(self) -> str:
        return f"Detections(n={len(self)}, tracker_id={self.tracker_id.tolist()})"

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Any) -> Detections:
        """Select by boolean mask, integer array or slice (returns a new :class:`Detections`)."""
        return Detections(
            xyxy=self.xyxy[index],
            area=self.area[index],
            class_id=self.class_id[index],
            confidence=self.confidence[index],
            tracker_id=self.tracker_id[index],
        )

    @property
    def centroid(self) -> Float:
        """Box centres ``(N, 2)``, pixels."""
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2.0

    @property
    def wh(self) -> Float:
        """Box widths and heights ``(N, 2)``, pixels."""
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    def with_(self, **changes: npt.ArrayLike) -> Detections:
        """Copy with some columns replaced (re-validated)."""
        cols: dict[str, Any] = {k: getattr(self, k) for k in ("xyxy", "area", "class_id", "confidence", "tracker_id")}
        cols.update(changes)
        return Detections(**cols)

    @classmethod
    def empty(cls) -> Detections:
        return cls()


@dataclass(frozen=True)
class PerspectiveSize:
    """Expected area of a passenger car as a function of image row.

    On a flat road seen by a pinhole camera the apparent width of a vehicle grows linearly
    with its image row below the horizon, so ``sqrt(area)`` is interpolated linearly between
    two reference rows (and extrapolated beyond them, floored at 1 pixel).

    Attributes
    ----------
    y_far, area_far : float
        A row near the top of the road (pixels) and a typical car's area there (pixels²).
    y_near, area_near : float
        A row near the bottom (pixels) and a typical car's area there (pixels²).
    """

    y_far: float
    area_far: float
    y_near: float
    area_near: float

    def __post_init__(self) -> None:
        if self.y_near == self.y_far:
            raise ValueError("y_near and y_far must differ")
        if self.area_far <= 0 or self.area_near <= 0:
            raise ValueError("reference car areas must be > 0 pixels²")

    def expected_area(self, y: npt.ArrayLike) -> Float:
        """Typical car area at rows ``y`` (pixels²)."""
        y = np.asarray(y, dtype=np.float64)
        s_far, s_near = np.sqrt(self.area_far), np.sqrt(self.area_near)
        t = (y - self.y_far) / (self.y_near - self.y_far)
        side = np.maximum(s_far + t * (s_near - s_far), 1.0)
        return np.asarray(side * side, dtype=np.float64)

    def scaled(self, factor: float) -> PerspectiveSize:
        """The same model for an image scaled by ``factor`` (rows ×f, areas ×f²)."""
        f2 = factor * factor
        return PerspectiveSize(self.y_far * factor, self.area_far * f2, self.y_near * factor, self.area_near * f2)


def blobs_to_detections(
    mask: npt.NDArray[np.uint8],
    *,
    scale: float = 1.0,
    min_area: float = 60.0,
    max_area: float | None = None,
    perspective: PerspectiveSize | None = None,
    min_car_fraction: float = 0.15,
) -> Detections:
    """Connected components of a binary mask as :class:`Detections`.

    Parameters
    ----------
    mask : ndarray (h, w) uint8
        Foreground mask (non-zero = foreground) at model resolution.
    scale : float
        Frame pixels per mask pixel; boxes and areas are returned in frame pixels.
    min_area : float
        Blobs smaller than this are dropped, frame pixels².
    max_area : float, optional
        Blobs larger than this are dropped, frame pixels².
    perspective : PerspectiveSize, optional
        When given, a blob is kept only if its area is at least ``min_car_fraction`` of the
        typical car area at its bottom row (frame coordinates), so that small far vehicles
        survive while the same-size noise near the camera does not.
    min_car_fraction : float
        See ``perspective`` (unitless).

    Returns
    -------
    Detections
        One detection per kept component, ``confidence`` 1, ``class_id`` -1.
    """
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    stats = stats[1:count].astype(np.float64)  # drop the background label
    x, y, w, h, area = stats.T if len(stats) else (np.zeros(0),) * 5
    xyxy = np.stack([x, y, x + w, y + h], axis=1) * scale
    area = area * (scale * scale)
    keep = area >= min_area
    if max_area is not None:
        keep &= area <= max_area
    if perspective is not None and len(area):
        keep &= area >= min_car_fraction * perspective.expected_area(xyxy[:, 3])
    return Detections(xyxy=xyxy[keep], area=area[keep])


def merge_fragments(
    detections: Detections,
    perspective: PerspectiveSize,
    *,
    small_max: float = 0.4,
    merged_max: float = 2.2,
    gap: float = 0.3,
) -> Detections:
    """Join the pieces of one vehicle that background subtraction split into several blobs.

    Two blobs are joined when their boxes are at most ``gap`` × the side of a typical car
    (square root of its area) at the pair's bottom row apart on both axes, at least one of them is smaller than ``small_max`` of a typical car at its bottom row
    (too small to be a car) and their areas together stay below ``merged_max`` of a car at
    the pair's bottom row; joined pairs are chained (connected components). Two car-sized
    blobs are never joined, so neighbouring cars stay apart.

    Parameters
    ----------
    detections : Detections
        Blobs of one frame (frame pixels), before tracking.
    perspective : PerspectiveSize
        Typical car area by row, frame pixels².
    small_max, merged_max : float
        Area ratios to a typical car (unitless): below ``small_max`` a blob is a fragment
        candidate; a joined pair must stay below ``merged_max`` (the truck threshold, so that
        joining never makes a truck).
    gap : float
        Largest gap between two boxes that are joined, as a fraction of a typical car's side
        at the pair's bottom row (unitless; 0.3 is 7 pixels where a car is 23 pixels wide).

    Returns
    -------
    Detections
        One detection per group: the union box and the summed area (other columns default).
    """
    n = len(detections)
    if n < 2:
        return detections
    box, area = detections.xyxy, detections.area
    small = area < small_max * perspective.expected_area(box[:, 3])
    if not small.any():
        return detections
    car = perspective.expected_area(np.maximum(box[:, None, 3], box[None, :, 3]))  # (n, n), pixels²
    overlap = np.minimum(box[:, None, 2:], box[None, :, 2:]) - np.maximum(box[:, None, :2], box[None, :, :2])
    near = np.all(overlap >= -gap * np.sqrt(car)[:, :, None], axis=2)
    link = near & (small[:, None] | small[None, :]) & (area[:, None] + area[None, :] < merged_max * car)
    np.fill_diagonal(link, False)
    if not link.any():
        return detections
    i, j = np.nonzero(link)
    k, label = connected_components(coo_array((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    lo = np.full((k, 2), np.inf)
    hi = np.full((k, 2), -np.inf)
    np.minimum.at(lo, label, box[:, :2])
    np.maximum.at(hi, label, box[:, 2:])
    return Detections(xyxy=np.hstack([lo, hi]), area=np.bincount(label, weights=area, minlength=k))
