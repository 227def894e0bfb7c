"""Camera health from the frames: too dark, out of focus, view blocked, camera moved.

Every ``ITS_VIDEO_HEALTH_INTERVAL_S`` seconds of stream time the worker hands a frame to
:class:`HealthMonitor`, which measures it on a grey copy at most ``width`` pixels wide
(:func:`measure`, pure, a few milliseconds at 320 x 240) against a *reference*: the per-pixel
median of the last ``history`` normal checks, recomputed every third normal check (passing
vehicles vanish from a median; the reference follows the daylight because only normal checks
enter it):

- **brightness**: mean grey level, 0-255; below ``dark_below`` the image is *too dark*.
- **sharpness**: variance of the Laplacian over the variance of the image (unitless, the same
  for a darker or brighter copy of a scene); under ``focus_ratio`` of the camera's learnt
  baseline (median of its first normal checks, then a slow average of normal checks) the
  camera is *out of focus*.
- **global change**: the image is cut into ``cell`` × ``cell`` pixel cells; a textured cell of
  the reference (standard deviation >= 4 grey levels) has *changed* when its zero-mean
  normalised cross-correlation with the current cell is under ``changed_ncc``, and gone
  *flat* when also its standard deviation fell under ``flat_ratio`` of the reference's.
  ``cv2.phaseCorrelate`` gives the global shift between reference and frame (pixels) and the
  strength of its peak.
- Thresholds were set on real frames (haar_video1/2, CDnet highway) and their darkened,
  blurred, shifted, rotated and covered copies: normal frames show sharpness 0.54-1.29 of
  the baseline, at most 19 % changed cells and shifts under 0.5 px (README, "Camera health").
- **moved**: a global shift of at least ``moved_px`` with a clear peak (``shift_response``),
  or half the textured cells (``change_share``) changed without going flat (the camera points
  elsewhere). **view blocked**: half the textured cells changed and most of those went flat
  (a cover, dirt, spray), or the brightness fell under 30 % of a well-lit reference's at once
  (a cap; dusk darkens slowly and the reference follows it until it is too dark).

A condition is *raised* after ``persist`` consecutive checks show it and *cleared* after
``persist`` consecutive checks without it. The first ``baseline_checks`` checks learn the
reference and judge only the brightness. A moved camera stays moved until it is put back
(or its worker restarted): its lines and calibration no longer match the view.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["CONDITIONS", "FrameQuality", "HealthConfig", "HealthMonitor", "HealthReport", "alert_kind", "measure", "to_grey"]

#: Health conditions, worst first; the alert kind of each is ``camera_<condition>``.
CONDITIONS = ("view_blocked", "moved", "out_of_focus", "too_dark")
_TEXTURED_STD = 4.0  # grey levels: flatter reference cells (sky, smooth road) are not judged
_SUDDEN_DARK = 0.3  # a frame this much darker than a well-lit reference (>= 2 x dark_below) was covered


def alert_kind(condition: str) -> str:
    """The dispatcher alert kind of a health condition (``camera_too_dark``...)."""
    return f"camera_{condition}"


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds of the health checks (see the module docstring).

    Attributes
    ----------
    width : analysis width, pixels (frames are downscaled to it).
    dark_below : mean grey level (0-255) under which the image is too dark.
    focus_ratio : sharpness share of the baseline under which the camera is out of focus.
    cell : side of a comparison cell, analysis pixels.
    changed_ncc : cross-correlation with the reference (-1..1) under which a cell changed.
    flat_ratio : standard deviation share of the reference's under which a changed cell is flat.
    change_share : share of textured cells changed for a global change (0-1).
    moved_px : global shift meaning the camera moved, analysis pixels (1.25 % of 320).
    shift_response : phase-correlation peak strength needed to trust a shift (0-1).
    persist : consecutive checks that raise a condition, and that clear it.
    baseline_checks : normal checks that learn the reference and the sharpness baseline.
    history : normal checks whose median is the reference.
    baseline_weight : weight of a normal check in the sharpness baseline once learnt (0-1).
    """

    width: int = 320
    dark_below: float = 35.0
    focus_ratio: float = 0.25
    cell: int = 16
    changed_ncc: float = 0.5
    flat_ratio: float = 0.4
    change_share: float = 0.5
    moved_px: float = 4.0
    shift_response: float = 0.15
    persist: int = 3
    baseline_checks: int = 5
    history: int = 9
    baseline_weight: float = 0.02


@dataclass(frozen=True)
class FrameQuality:
    """Measurements of one frame (analysis pixels are the frame's, scaled to ``width``).

    Attributes
    ----------
    brightness : mean grey level, 0-255.
    sharpness : var(Laplacian) / var(grey), unitless.
    sharpness_ratio : sharpness over the baseline (None before one exists).
    changed_share : share of the reference's textured cells that changed, 0-1 (None: no reference).
    flat_share : share of the changed cells that went flat, 0-1 (None: no reference).
    shift_px : global shift from the reference, frame pixels (None: no reference).
    shift_response : phase-correlation peak strength, 0-1 (None: no reference).
    flags : conditions this frame shows (before persistence).
    """

    brightness: float
    sharpness: float
    sharpness_ratio: float | None = None
    changed_share: float | None = None
    flat_share: float | None = None
    shift_px: float | None = None
    shift_response: float | None = None
    flags: frozenset[str] = frozenset()


def to_grey(image: npt.NDArray[np.uint8], width: int) -> npt.NDArray[np.float32]:
    """Grey copy of a BGR (or grey) image at most ``width`` pixels wide, float32."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    if grey.shape[1] > width:
        h = max(1, round(grey.shape[0] * width / grey.shape[1]))
        grey = cv2.resize(grey, (width, h), interpolation=cv2.INTER_AREA)
    return np.asarray(grey, dtype=np.float32)


def _sharpness(grey: npt.NDArray[np.float32]) -> float:
    lap = cv2.Laplacian(grey, cv2.CV_32F, ksize=3)
    return float(lap.var() / max(float(grey.var()), 1e-6))


@lru_cache(maxsize=8)
def _hanning(width: int, height: int) -> npt.NDArray[np.float32]:
    return np.asarray(cv2.createHanningWindow((width, height), cv2.CV_32F))


def _cells(grey: npt.NDArray[np.float32], cell: int) -> npt.NDArray[np.float32]:
    ny, nx = grey.shape[0] // cell, grey.shape[1] // cell
    return grey[: ny * cell, : nx * cell].reshape(ny, cell, nx, cell).transpose(0, 2, 1, 3).reshape(ny, nx, cell * cell)


def measure(grey: npt.NDArray[np.float32], reference: npt.NDArray[np.float32] | None, baseline_sharpness: float | None,
            config: HealthConfig, scale: float = 1.0) -> FrameQuality:
    """Measure one grey frame against the reference (pure).

    Parameters
    ----------
    grey : ndarray (H, W) float32
        The frame, grey, at analysis size (:func:`to_grey`).
    reference : ndarray (H, W) float32, optional
        The camera's reference at the same size (None while it is being learnt).
    baseline_sharpness : float, optional
        The camera's usual sharpness (unitless).
    config : HealthConfig
        Thresholds.
    scale : float
        Frame pixels per analysis pixel (reports the shift in frame pixels).
    """
    brightness = float(grey.mean())
    sharp = _sharpness(grey)
    flags: set[str] = set()
    if brightness < config.dark_below:
        flags.add("too_dark")
    if reference is None:
        return FrameQuality(brightness, sharp, flags=frozenset(flags))
    ratio = sharp / baseline_sharpness if baseline_sharpness else None
    ref_brightness = float(reference.mean())
    if brightness < _SUDDEN_DARK * ref_brightness and ref_brightness >= 2 * config.dark_below:
        flags.add("view_blocked")  # the light went at once (a cap, a hand, a bag), not at dusk
    cur, ref = _cells(grey, config.cell), _cells(reference, config.cell)
    cur_c, ref_c = cur - cur.mean(axis=2, keepdims=True), ref - ref.mean(axis=2, keepdims=True)
    cur_sd, ref_sd = cur_c.std(axis=2), ref_c.std(axis=2)
    ncc = (cur_c * ref_c).mean(axis=2) / np.maximum(cur_sd * ref_sd, 1e-6)
    textured = ref_sd >= _TEXTURED_STD
    changed = textured & (ncc < config.changed_ncc)
    flat = changed & (cur_sd < config.flat_ratio * ref_sd)
    n_tex, n_changed = int(textured.sum()), int(changed.sum())
    changed_share = n_changed / n_tex if n_tex else 0.0
    flat_share = int(flat.sum()) / n_changed if n_changed else 0.0
    (dx, dy), response = cv2.phaseCorrelate(reference, grey, _hanning(grey.shape[1], grey.shape[0]))
    shift = float(np.hypot(dx, dy))
    if brightness >= config.dark_below:
        if changed_share >= config.change_share and flat_share >= 0.5:
            flags.add("view_blocked")
        elif shift >= config.moved_px and response >= config.shift_response:
            flags.add("moved")
        elif changed_share >= config.change_share:
            flags.add("moved")  # still a structured view, but another one
        if ratio is not None and ratio < config.focus_ratio and not flags & {"view_blocked", "moved"}:
            flags.add("out_of_focus")
    return FrameQuality(brightness, sharp, ratio, changed_share, flat_share, shift * scale, float(response), frozenset(flags))


@dataclass
class HealthReport:
    """The outcome of one check: its measurements and the camera's active conditions."""

    t: float
    quality: FrameQuality
    conditions: frozenset[str]
    changed: bool

    def payload(self) -> dict[str, Any]:
        """The ``health`` object of the camera's status message (see :mod:`video.worker`)."""
        q = self.quality

        def r(v: float | None, nd: int = 3) -> float | None:
            return None if v is None else round(v, nd)

        return {"conditions": [c for c in CONDITIONS if c in self.conditions], "brightness": r(q.brightness, 1),
                "sharpness_ratio": r(q.sharpness_ratio), "changed_share": r(q.changed_share),
                "shift_px": r(q.shift_px, 1)}


@dataclass
class HealthMonitor:
    """One camera's health: checks a frame every ``interval_s`` of stream time.

    Parameters
    ----------
    config : HealthConfig
        Thresholds and persistence.
    interval_s : float
        Stream time between checks, s.
    """

    config: HealthConfig = field(default_factory=HealthConfig)
    interval_s: float = 2.0
    conditions: frozenset[str] = frozenset()
    last: HealthReport | None = None
    _next_t: float | None = None
    _history: deque[npt.NDArray[np.float32]] = field(default_factory=deque)
    _reference: npt.NDArray[np.float32] | None = None
    _baseline: float | None = None
    _learning: list[float] = field(default_factory=list)
    _streak: dict[str, int] = field(default_factory=dict)
    _added: int = 0  # normal checks since the reference was last computed

    def update(self, image: npt.NDArray[np.uint8], t: float) -> HealthReport | None:
        """Check ``image`` (BGR, frame at stream time ``t`` s) when a check is due; else None."""
        if self._next_t is not None and t < self._next_t - 1e-3:  # a millisecond early is on time
            return None
        self._next_t = t + self.interval_s
        c = self.config
        grey = to_grey(image, c.width)
        if self._reference is not None and self._reference.shape != grey.shape:
            self._history.clear()  # the stream changed size: learn again
            self._reference, self._baseline, self._learning, self._added = None, None, [], 0
        q = measure(grey, self._reference, self._baseline, c, scale=image.shape[1] / grey.shape[1])
        if not q.flags:
            self._learn(grey, q.sharpness)
        for name in CONDITIONS:  # positive streak while shown, negative while not
            s = self._streak.get(name, 0)
            self._streak[name] = (max(s, 0) + 1) if name in q.flags else (min(s, 0) - 1)
        active = {n for n in CONDITIONS if self._streak[n] >= c.persist}
        active |= {n for n in self.conditions if self._streak[n] > -c.persist}
        changed = frozenset(active) != self.conditions
        self.conditions = frozenset(active)
        self.last = HealthReport(t, q, self.conditions, changed)
        return self.last

    def _learn(self, grey: npt.NDArray[np.float32], sharpness: float) -> None:
        c = self.config
        self._history.append(grey)
        while len(self._history) > c.history:
            self._history.popleft()
        if self._baseline is None:
            self._learning.append(sharpness)
            if len(self._learning) >= c.baseline_checks:
                self._baseline = float(np.median(self._learning))
        else:
            self._baseline += c.baseline_weight * (sharpness - self._baseline)
        self._added += 1
        if len(self._history) >= c.baseline_checks and (self._reference is None or self._added >= 3):
            self._reference = np.median(np.stack(self._history), axis=0).astype(np.float32)
            self._added = 0
