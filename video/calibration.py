"""Ground-plane calibration of a camera: image pixels → metres on the road (and lat/lon).

A camera is calibrated by four or more image points (frame pixels, after the source's
``max_width`` downscale) paired with their map coordinates (lat, lon in degrees, WGS84). The
map points are projected to local metres with an equirectangular projection around their
centroid (x east, y north; below 1 mm of error over a few hundred metres), and
:func:`cv2.findHomography` (least squares over all pairs) fits the plane-to-plane homography
image → metres. The road is assumed planar within the calibrated area.

A calibration is refused (:class:`CalibrationError`) when it cannot determine a homography:
fewer than four pairs, no four points of which no three are (nearly) collinear, in the image
or on the map, map points spread over less than 1 m or more than 5 km, image points on both
sides of the fitted horizon, or pairs that a homography cannot reconcile (RMS residual above
5 % of the map points' spread: usually swapped pairs or lat/lon in the wrong order).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["EARTH_RADIUS_M", "CalibrationError", "GroundCalibration", "check_general_position", "from_local_metres",
           "local_metres"]

Float = npt.NDArray[np.float64]
EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius, m
_COLLINEAR_SHARE = 0.01  # a point within 1 % of the spread from a line through two others is on it
_MAX_POINTS = 32
_MIN_SPREAD_M, _MAX_SPREAD_M = 1.0, 5_000.0
_MAX_RESIDUAL_SHARE = 0.05
_RANGE_FACTOR = 4.0  # pixels mapping farther than this × spread from the centroid are outside the calibration


class CalibrationError(ValueError):
    """The points cannot define a ground homography (the message says why)."""


def local_metres(latlon: npt.ArrayLike, origin: tuple[float, float] | None = None) -> tuple[Float, tuple[float, float]]:
    """Project ``(lat, lon)`` degrees to local metres (x east, y north), equirectangular.

    Parameters
    ----------
    latlon : array_like (N, 2)
        Latitude, longitude in degrees.
    origin : (lat, lon), optional
        Projection centre in degrees (default: the points' centroid).

    Returns
    -------
    xy : ndarray (N, 2)
        Metres east and north of ``origin``.
    origin : (lat, lon)
        The projection centre used, degrees.
    """
    pts = np.asarray(latlon, dtype=np.float64).reshape(-1, 2)
    lat0, lon0 = (float(pts[:, 0].mean()), float(pts[:, 1].mean())) if origin is None else origin
    k = np.pi / 180.0 * EARTH_RADIUS_M
    x = (pts[:, 1] - lon0) * k * np.cos(np.radians(lat0))
    y = (pts[:, 0] - lat0) * k
    return np.stack([x, y], axis=1), (lat0, lon0)


def from_local_metres(xy: npt.ArrayLike, origin: tuple[float, float]) -> Float:
    """Inverse of :func:`local_metres`: metres east/north of ``origin`` → ``(lat, lon)`` degrees."""
    pts = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    lat0, lon0 = origin
    k = np.pi / 180.0 * EARTH_RADIUS_M
    return np.stack([lat0 + pts[:, 1] / k, lon0 + pts[:, 0] / (k * np.cos(np.radians(lat0)))], axis=1)


def _spread(pts: Float) -> float:
    return float(np.max(np.linalg.norm(pts[:, None, :] - pts[None, :, :], axis=2)))


def check_general_position(points: npt.ArrayLike, what: str = "points") -> None:
    """Raise :class:`CalibrationError` unless four of ``points`` have no three collinear.

    Collinear means: the third point lies within 1 % of the points' spread (largest pairwise
    distance) of the line through the other two. At most 32 points.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) < 4:
        raise CalibrationError(f"{what}: need at least 4 points, got {len(pts)}")
    if len(pts) > _MAX_POINTS:
        raise CalibrationError(f"{what}: at most {_MAX_POINTS} points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise CalibrationError(f"{what}: coordinates must be finite numbers")
    spread = _spread(pts)
    if spread <= 0:
        raise CalibrationError(f"{what}: all points coincide")
    tol = _COLLINEAR_SHARE * spread
    quads = np.array(list(combinations(range(len(pts)), 4)), dtype=np.int64)
    ok = np.ones(len(quads), dtype=bool)
    for i, j, k in combinations(range(4), 3):
        a, b, c = pts[quads[:, i]], pts[quads[:, j]], pts[quads[:, k]]
        ab, ac, bc = b - a, c - a, c - b
        twice_area = np.abs(ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0])
        longest = np.maximum(np.maximum(np.hypot(*ab.T), np.hypot(*ac.T)), np.hypot(*bc.T))
        ok &= twice_area / np.maximum(longest, 1e-12) > tol  # height of the triangle over its longest side
    if not ok.any():
        raise CalibrationError(f"{what}: degenerate, no four points with no three on a line (collinear or repeated points)")


@dataclass(frozen=True)
class GroundCalibration:
    """Homography from frame pixels to metres on the road plane.

    Attributes
    ----------
    homography : ndarray (3, 3)
        Maps homogeneous pixels ``(x, y, 1)`` to metres east/north of ``origin``.
    origin : (lat, lon)
        Centre of the local projection, degrees (the map points' centroid).
    rms_error_m : float
        RMS distance between the map points and their image points mapped through the
        homography, m.
    spread_m : float
        Largest distance between two map points, m.
    sign : float
        Sign of the homography's third coordinate on the calibrated side of the horizon.
    """

    homography: Float
    origin: tuple[float, float]
    rms_error_m: float
    spread_m: float
    sign: float

    @classmethod
    def fit(cls, image_points: npt.ArrayLike, world_points: npt.ArrayLike) -> GroundCalibration:
        """Fit from image points (pixels ``x, y``) and their map points (``lat, lon`` degrees).

        Raises
        ------
        CalibrationError
            Fewer than 4 pairs, different counts, degenerate (collinear) points, implausible
            spread or pairs a homography cannot reconcile.
        """
        img = np.asarray(image_points, dtype=np.float64).reshape(-1, 2)
        geo = np.asarray(world_points, dtype=np.float64).reshape(-1, 2)
        if len(img) != len(geo):
            raise CalibrationError(f"image_points ({len(img)}) and world_points ({len(geo)}) must pair up one to one")
        if (np.abs(geo[:, 0]) > 90).any() or (np.abs(geo[:, 1]) > 180).any():
            raise CalibrationError("world_points: expected [lat, lon] in degrees (|lat| <= 90, |lon| <= 180)")
        check_general_position(img, "image_points")
        xy, origin = local_metres(geo)
        check_general_position(xy, "world_points")
        spread = _spread(xy)
        if not _MIN_SPREAD_M <= spread <= _MAX_SPREAD_M:
            raise CalibrationError(f"world_points: spread over {spread:.1f} m; expected {_MIN_SPREAD_M:g} m to {_MAX_SPREAD_M:g} m")
        h, _ = cv2.findHomography(img, xy, 0)
        if h is None or not np.isfinite(h).all() or abs(np.linalg.det(h)) < 1e-12:
            raise CalibrationError("image_points/world_points: no homography fits these pairs")
        w = np.column_stack([img, np.ones(len(img))]) @ h[2]
        if not ((w > 0).all() or (w < 0).all()):
            raise CalibrationError("image_points/world_points: the image points lie on both sides of the horizon of the fitted"
                                   " ground plane; check the order of the pairs and [lat, lon]")
        mapped = (np.column_stack([img, np.ones(len(img))]) @ h.T)
        mapped = mapped[:, :2] / mapped[:, 2:]
        rms = float(np.sqrt(np.mean(np.sum((mapped - xy) ** 2, axis=1))))
        if rms > _MAX_RESIDUAL_SHARE * spread:
            raise CalibrationError(
                f"image_points/world_points disagree: RMS residual {rms:.1f} m after fitting a homography"
                f" (over {_MAX_RESIDUAL_SHARE:.0%} of their {spread:.0f} m spread); check the order of the pairs and [lat, lon]"
            )
        return cls(np.asarray(h, dtype=np.float64), origin, rms, spread, float(np.sign(w[0])))

    def to_metres(self, pixels: npt.ArrayLike) -> Float:
        """Map frame pixels ``(N, 2)`` to metres east/north of :attr:`origin` ``(N, 2)``.

        Pixels beyond the horizon, or mapping farther than 4 × :attr:`spread_m` from the
        calibration's centre (outside the calibrated area), give NaN.
        """
        px = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
        hom = np.column_stack([px, np.ones(len(px))]) @ self.homography.T
        w = hom[:, 2] * self.sign
        with np.errstate(divide="ignore", invalid="ignore"):
            xy = hom[:, :2] / hom[:, 2:]
        bad = (w <= 1e-12) | (np.hypot(xy[:, 0], xy[:, 1]) > _RANGE_FACTOR * self.spread_m)
        xy[bad] = np.nan
        return np.asarray(xy, dtype=np.float64)

    def to_latlon(self, pixels: npt.ArrayLike) -> Float:
        """Map frame pixels ``(N, 2)`` to ``(lat, lon)`` degrees (NaN outside, see :meth:`to_metres`)."""
        return from_local_metres(self.to_metres(pixels), self.origin)
