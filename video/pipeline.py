"""The counting pipeline: frame → foreground → blobs → classes → tracks → line/zone counts.

:class:`CountingPipeline` composes the pure stages for one camera; the evaluation, the
benchmark and the camera worker all drive it one :class:`video.sources.Frame` at a time.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from video.aggregate import CountRecord, IntervalAggregator, SpeedTrap
from video.calibration import GroundCalibration
from video.classify import DetectorBackend, SizeClassifier, class_name
from video.counting import Anchor, LineCounter, ZoneCounter
from video.detections import Detections, PerspectiveSize, blobs_to_detections, merge_fragments
from video.foreground import ForegroundConfig, ForegroundModel
from video.sources import Frame
from video.speeds import TrackSpeeds, VehicleSpeed
from video.tracking import Tracker, TrackerConfig

__all__ = ["CountingPipeline", "FrameResult", "LineSpec", "PipelineConfig", "ZoneSpec"]


@dataclass(frozen=True)
class LineSpec:
    """A counting line: id and directed segment ``(x1, y1, x2, y2)`` in frame pixels."""

    line_id: str
    points: tuple[float, float, float, float]


@dataclass(frozen=True)
class ZoneSpec:
    """A zone: id and polygon vertices in frame pixels."""

    zone_id: str
    polygon: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that shapes one camera's pipeline.

    Attributes
    ----------
    lines, zones : tuple
        Counting lines and zones.
    foreground : ForegroundConfig
        Background model settings.
    tracker : TrackerConfig
        Tracker settings.
    min_area_fraction : float
        Blobs smaller than this fraction of the frame area are noise (unitless).
    perspective : PerspectiveSize, optional
        Typical car area by row (frame pixels); enables the perspective size filter and
        size classes (without it every vehicle is a ``car``).
    min_car_fraction : float
        With ``perspective``: blobs below this fraction of a car at their row are dropped.
    anchor : {"center", "bottom_center"}
        Box point that must cross lines / lie in zones.
    speed_traps : tuple of SpeedTrap
        Calibrated line pairs for mean speed.
    ground : GroundCalibration, optional
        Frame pixels → metres on the road; each vehicle's speed (km/h) is measured from its
        track when it crosses a line (:mod:`video.speeds`) and averaged per interval.
    interval_s : int
        Aggregation interval, s.
    motorcycle_max, truck_min : float
        Size-class thresholds on area ÷ typical car area (see
        :class:`video.classify.SizeClassifier`).
    fragment_gap : float
        With ``perspective``: blobs at most this fraction of a typical car's side apart
        (unitless; 0.3 = 7 pixels where a car is 23 pixels wide) are joined when one
        is two-wheeler-sized and together they are not truck-sized (one vehicle split by
        background subtraction, :func:`video.detections.merge_fragments`); 0 disables.
    warmup_s : float
        Detections are ignored for this long after the first frame while the background
        model settles, s of stream time.
    """

    lines: tuple[LineSpec, ...] = ()
    zones: tuple[ZoneSpec, ...] = ()
    foreground: ForegroundConfig = field(default_factory=ForegroundConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    min_area_fraction: float = 0.0008
    perspective: PerspectiveSize | None = None
    min_car_fraction: float = 0.15
    anchor: Anchor = "center"
    speed_traps: tuple[SpeedTrap, ...] = ()
    ground: GroundCalibration | None = None
    interval_s: int = 60
    warmup_s: float = 1.0
    motorcycle_max: float = 0.4
    truck_min: float = 2.2
    fragment_gap: float = 0.3


@dataclass
class FrameResult:
    """Output of one pipeline step."""

    frame: Frame
    detections: Detections
    crossed: dict[str, tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]]
    records: list[CountRecord]


class CountingPipeline:
    """One camera's stateful pipeline.

    Parameters
    ----------
    config : PipelineConfig
        Lines, zones and stage settings.
    roi : ndarray (H, W) uint8, optional
        Region of interest at frame resolution.
    detector : DetectorBackend, optional
        Replaces background subtraction (e.g. :class:`video.classify.OnnxDetector`).
    """

    def __init__(self, config: PipelineConfig, roi: npt.NDArray[np.uint8] | None = None, detector: DetectorBackend | None = None) -> None:
        self.config = config
        self.foreground = ForegroundModel(config.foreground, roi=roi)
        self.detector = detector
        self.tracker = Tracker(config.tracker)
        self.lines = [LineCounter(s.points[:2], s.points[2:], s.line_id, anchor=config.anchor) for s in config.lines]
        self.zones = [ZoneCounter(list(z.polygon), z.zone_id, anchor=config.anchor) for z in config.zones]
        self.classifier = SizeClassifier(config.perspective, config.motorcycle_max, config.truck_min) if config.perspective else None
        self.aggregator = IntervalAggregator([s.line_id for s in config.lines], config.interval_s, list(config.speed_traps))
        self.speeds = TrackSpeeds() if config.ground is not None else None
        self.vehicle_speeds: deque[VehicleSpeed] = deque(maxlen=5000)  # the latest vehicles' speeds at their crossings
        self.frames = 0
        self.last_mask: npt.NDArray[np.uint8] | None = None
        self.last: FrameResult | None = None
        self._last_wall: float | None = None
        self._first_t: float | None = None

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections:
        """Detections of one frame (background subtraction unless a detector is set)."""
        if self.detector is not None:
            return self.detector.detect(image)
        mask = self.foreground.apply(image)
        self.last_mask = mask
        h, w = image.shape[:2]
        dets = blobs_to_detections(
            mask, scale=self.foreground.scale, min_area=self.config.min_area_fraction * h * w,
            perspective=self.config.perspective, min_car_fraction=self.config.min_car_fraction,
        )
        if self.config.perspective is not None and self.config.fragment_gap > 0:
            dets = merge_fragments(dets, self.config.perspective, small_max=self.config.motorcycle_max,
                                   merged_max=self.config.truck_min, gap=self.config.fragment_gap)
        if self.classifier is not None:
            dets = self.classifier(dets)
        return dets

    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on ``frame``; return its tracked detections, crossings and any
        count records of intervals that closed."""
        if self._first_t is None:
            self._first_t = frame.t
        dets = self.detect(frame.image)
        if frame.t - self._first_t < self.config.warmup_s:
            dets = Detections.empty()
        dets = self.tracker.update(dets, frame.t)
        if self.speeds is not None:
            self.speeds.update(dets.tracker_id, self._ground(dets, frame.image.shape[:2]), frame.t)
        crossed = {}
        occupied = {}
        for line in self.lines:
            cin, cout = line.trigger(dets)
            crossed[line.line_id] = (cin, cout)
            for direction, mask in (("in", cin), ("out", cout)):
                if mask.any():
                    self.aggregator.add_crossings(frame.wall, line.line_id, direction, dets.tracker_id[mask], dets.class_id[mask])
                    if self.speeds is not None:
                        self._add_speeds(frame.wall, line.line_id, direction, dets.tracker_id[mask], dets.class_id[mask])
            occupied[line.line_id] = line.occupied(dets)
        for zone in self.zones:
            zone.trigger(dets, frame.t)
        dt = 0.0 if self._last_wall is None else max(frame.wall - self._last_wall, 0.0)
        self._last_wall = frame.wall
        self.aggregator.add_occupancy(frame.wall, dt, occupied)
        records = self.aggregator.flush(frame.wall)
        self.frames += 1
        self.last = FrameResult(frame, dets, crossed, records)
        return self.last

    def _ground(self, dets: Detections, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
        """Road position (m) of each box's bottom centre; NaN for boxes cut by the left, right or bottom border."""
        assert self.config.ground is not None
        box = dets.xyxy
        h, w = shape[0], shape[1]
        foot = np.column_stack([(box[:, 0] + box[:, 2]) / 2, box[:, 3]])
        xy = self.config.ground.to_metres(foot)
        xy[(box[:, 0] <= 1) | (box[:, 2] >= w - 2) | (box[:, 3] >= h - 2)] = np.nan
        return xy

    def _add_speeds(self, wall: float, line_id: str, direction: str, track_ids: npt.NDArray[np.int64],
                    class_ids: npt.NDArray[np.int64]) -> None:
        assert self.speeds is not None
        kmh = self.speeds.speed_kmh(track_ids)
        self.aggregator.add_speeds(wall, line_id, direction, class_ids, kmh)
        for tid, cls, v in zip(track_ids.tolist(), class_ids.tolist(), kmh.tolist(), strict=True):
            if np.isfinite(v):
                self.vehicle_speeds.append(VehicleSpeed(wall, line_id, direction, int(tid), class_name(max(cls, 0)), float(v)))

    def finish(self) -> list[CountRecord]:
        """Emit the records of the last, partial interval (end of a file)."""
        if self._last_wall is None:
            return []
        return self.aggregator.flush(self._last_wall, final=True)

    def counts(self) -> dict[str, dict[str, Any]]:
        """Running totals per line: ``{"line-0": {"in", "out", "by_class": {...}}}``."""
        from video.classify import class_name

        out: dict[str, dict[str, Any]] = {}
        for line in self.lines:
            by_class: dict[str, dict[str, int]] = {}
            for direction in ("in", "out"):
                for cls, n in sorted(line.by_class[direction].items()):
                    by_class.setdefault(class_name(cls if cls >= 0 else 0), {"in": 0, "out": 0})[direction] += n
            out[line.line_id] = {"in": line.in_count, "out": line.out_count, "by_class": by_class}
        return out
