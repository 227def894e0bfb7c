"""Camera configuration (``cameras.yaml``) and the video domain's settings (``ITS_VIDEO_*``).

``cameras.yaml``::

    interval_s: 60                 # optional default for every camera, s
    cameras:
      - id: freeway-1
        source: ../shared/data/video/haar_video2.avi   # file, folder, .tar(.gz) or rtsp/http URL
        loop: true                 # replay a file forever (demo)
        stride: 1                  # process one frame in N
        lines:
          - {id: northbound, points: [30, 150, 300, 150]}   # x1, y1, x2, y2 in frame pixels
        zones:
          - {id: merge, polygon: [[10, 200], [150, 200], [150, 239], [10, 239]]}
        roi: [[0, 0], [319, 0], [319, 239], [0, 239]]       # polygon, frame pixels
        calibration:
          perspective: {y_far: 40, area_far: 60, y_near: 220, area_near: 900}
          # >= 4 road points in frame pixels [x, y] with their map position [lat, lon] (degrees);
          # speeds (km/h) are measured on this ground plane (video.calibration, video.speeds).
          # A measured example: freeway-1 in video/data/cameras.example.yaml.
          image_points: [[x1, y1], [x2, y2], [x3, y3], [x4, y4], ...]
          world_points: [[lat1, lon1], [lat2, lon2], [lat3, lon3], [lat4, lon4], ...]
          # or, instead of image/world points: two lines a measured road distance apart
          # speed_traps: [{first_line: a, second_line: b, distance_m: 30}]
        classes: {motorcycle_max: 0.4, truck_min: 2.2}
      - id: mall-1                 # a pedestrian camera: no lines needed with a people model
        source: rtsp://10.0.0.7/stream1
        zones:
          - {id: entrance, polygon: [[0, 300], [640, 300], [640, 480], [0, 480]]}
        people_model: mall-1.npz   # `its video calibrate-people` output: people present per
                                   # interval (mean, max) in its ROI and in each zone
        people_every_s: 0.5        # one people estimate per 0.5 s of stream time
        people_lines:              # people crossing per direction (density x optical flow);
          - {id: doors, points: [0, 300, 640, 300]}   # needs frames <= 0.25 s apart, else the
                                                      # camera reports zones only

A validation error names the file, the camera (id and position) and the field.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from video.aggregate import SpeedTrap
from video.calibration import (
    CalibrationError,
    GroundCalibration,
    check_general_position,
    local_metres,
)
from video.detections import PerspectiveSize
from video.foreground import ForegroundConfig
from video.pipeline import LineSpec, PipelineConfig, ZoneSpec

__all__ = [
    "CameraConfig",
    "CameraConfigError",
    "CamerasFile",
    "VideoSettings",
    "get_video_settings",
    "load_cameras",
]

_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class VideoSettings(BaseSettings):
    """Video-domain settings; every field maps to ``ITS_VIDEO_<FIELD_NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ITS_VIDEO_", extra="ignore", frozen=True)

    model_width: int = Field(default=320, ge=16, description="Frames wider than this are downscaled before background modelling (pixels)."
    )
    processes: int = Field(default=0, ge=0, description="Camera worker processes (0: one per CPU core, at most one per camera)."
    )
    snapshot_interval_s: float = Field(default=5.0, gt=0, description="How often each camera writes and publishes its annotated JPEG snapshot (s)."
    )
    status_interval_s: float = Field(default=30.0, gt=0, description="Heartbeat period of camera status messages (s)."
    )
    reconnect_initial_s: float = Field(default=0.5, gt=0, description="First reconnect delay after a source fails (s).")
    reconnect_max_s: float = Field(default=30.0, gt=0, description="Longest reconnect delay (s).")
    stale_after_s: float = Field(default=180.0, gt=0, description="The API marks a camera's counts stale, and raises camera_offline for a camera silent (no counts, no status) for longer than this (s)."
    )
    health_interval_s: float = Field(default=2.0, gt=0, description="Stream time between two health checks of a camera's frames (dark, focus, blocked, moved) (s).")
    health_persist: int = Field(default=3, ge=1, le=100, description="Consecutive health checks that raise a condition, and that clear it.")
    lease_s: float = Field(default=15.0, ge=1.0, le=3600.0, description="Camera lease of `its video run` without --config: a worker renews its cameras' leases every third of it; a dead worker's cameras are taken over by others once their leases expire (s).")


@lru_cache(maxsize=1)
def get_video_settings() -> VideoSettings:
    """Process-wide video settings (cached)."""
    return VideoSettings()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineConfig(_Strict):
    """A directed counting line; ``in`` = crossing from its left to its right (see counting)."""

    id: str = Field(pattern=_ID_PATTERN)
    points: tuple[float, float, float, float]

    @field_validator("points")
    @classmethod
    def _distinct(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if not all(math.isfinite(c) for c in v):
            raise ValueError("the end points must be finite pixel coordinates")
        if v[:2] == v[2:]:
            raise ValueError("the two end points coincide")
        return v


class ZoneConfig(_Strict):
    id: str = Field(pattern=_ID_PATTERN)
    polygon: list[tuple[float, float]] = Field(min_length=3)


class PerspectiveConfig(_Strict):
    y_far: float = Field(description="Row near the far end of the road, pixels.")
    area_far: float = Field(gt=0, description="Typical car area there, pixels².")
    y_near: float = Field(description="Row near the camera, pixels.")
    area_near: float = Field(gt=0, description="Typical car area there, pixels².")

    @model_validator(mode="after")
    def _rows_differ(self) -> PerspectiveConfig:
        if self.y_far == self.y_near:
            raise ValueError("y_far and y_near must differ")
        return self


class SpeedTrapConfig(_Strict):
    first_line: str
    second_line: str
    distance_m: float = Field(gt=0)


class CalibrationConfig(_Strict):
    perspective: PerspectiveConfig | None = None
    speed_traps: list[SpeedTrapConfig] = Field(default_factory=list)
    image_points: list[tuple[float, float]] | None = Field(
        default=None, description="Road points in frame pixels [x, y] (after max_width), paired with world_points.")
    world_points: list[tuple[float, float]] | None = Field(
        default=None, description="Map position [lat, lon] in degrees of each image point.")

    @field_validator("image_points")
    @classmethod
    def _image_general(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if v is not None:
            try:
                check_general_position(v, "image_points")
            except CalibrationError as exc:
                raise ValueError(str(exc)) from None
        return v

    @field_validator("world_points")
    @classmethod
    def _world_general(cls, v: list[tuple[float, float]] | None) -> list[tuple[float, float]] | None:
        if v is not None:
            if any(abs(lat) > 90 or abs(lon) > 180 for lat, lon in v):
                raise ValueError("world_points: expected [lat, lon] in degrees (|lat| <= 90, |lon| <= 180)")
            try:
                check_general_position(local_metres(v)[0], "world_points")
            except CalibrationError as exc:
                raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _homography(self) -> CalibrationConfig:
        if (self.image_points is None) != (self.world_points is None):
            raise ValueError("image_points and world_points go together (pairs of pixel and [lat, lon] points)")
        if self.image_points is not None and self.speed_traps:
            raise ValueError("give either image_points/world_points (speeds from the ground plane) or speed_traps, not both")
        self.ground()  # raises on a degenerate set of pairs
        return self

    def ground(self) -> GroundCalibration | None:
        """The ground homography of ``image_points``/``world_points`` (None when not given)."""
        if self.image_points is None or self.world_points is None:
            return None
        try:
            return GroundCalibration.fit(self.image_points, self.world_points)
        except CalibrationError as exc:
            raise ValueError(str(exc)) from None


class ClassesConfig(_Strict):
    motorcycle_max: float = Field(default=0.4, gt=0, lt=1, description="Area ratio below which a blob is a motorcycle.")
    truck_min: float = Field(default=2.2, gt=1, description="Area ratio above which a blob is a truck/bus.")


class CameraConfig(_Strict):
    """One camera of ``cameras.yaml``."""

    id: str = Field(pattern=_ID_PATTERN)
    source: str = Field(min_length=1)
    fps: float | None = Field(default=None, gt=0, le=240)
    stride: int = Field(default=1, ge=1, le=30)
    max_width: int | None = Field(default=None, ge=64)
    loop: bool = False
    interval_s: int | None = Field(default=None, gt=0, le=3600)
    lines: list[LineConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    roi: list[tuple[float, float]] | None = Field(default=None, min_length=3)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)
    classes: ClassesConfig = Field(default_factory=ClassesConfig)
    min_area_fraction: float = Field(default=0.0008, gt=0, lt=0.5)
    people_model: str | None = Field(default=None, min_length=1, description="People-density model file (.npz) from `its video calibrate-people`; relative paths resolve against cameras.yaml.")
    people_every_s: float = Field(default=0.5, gt=0, le=60, description="Stream time between two people estimates, s (the model's features see the previous estimated frame: keep it near the calibration frames' spacing).")
    people_lines: list[LineConfig] = Field(default_factory=list, description="People-counting lines: people crossing each way per interval, estimated from the people density and optical flow (video.people_flow); needs a people_model and frames at most 0.25 s apart (otherwise the camera reports people per zone only). Separate from the vehicle `lines`.")
    synthetic: bool = Field(default=False, description="The source is a rendered scene (video.synthetic), not real footage; shown in /v1/cameras.")
    description: str | None = Field(default=None, max_length=200, description="Free text shown with the camera.")

    @model_validator(mode="after")
    def _references(self) -> CameraConfig:
        if not self.lines and self.people_model is None:
            raise ValueError("lines: at least one counting line is needed (or a people_model)")
        ids = [line.id for line in self.lines]
        if len(set(ids)) != len(ids):
            raise ValueError(f"lines: duplicate line id in {ids}")
        people_ids = [line.id for line in self.people_lines]
        if people_ids and self.people_model is None:
            raise ValueError("people_lines: counting people needs a people_model")
        if len(set(people_ids)) != len(people_ids):
            raise ValueError(f"people_lines: duplicate line id in {people_ids}")
        for trap in self.calibration.speed_traps:
            for name in (trap.first_line, trap.second_line):
                if name not in ids:
                    raise ValueError(f"calibration.speed_traps: unknown line {name!r} (lines: {ids})")
        return self

    def pipeline_config(self, settings: VideoSettings | None = None, interval_s: int = 60) -> PipelineConfig:
        """The :class:`video.pipeline.PipelineConfig` of this camera."""
        vs = settings or VideoSettings()
        p = self.calibration.perspective
        return PipelineConfig(
            lines=tuple(LineSpec(line.id, line.points) for line in self.lines),
            zones=tuple(ZoneSpec(z.id, tuple(z.polygon)) for z in self.zones),
            foreground=ForegroundConfig(model_width=vs.model_width),
            min_area_fraction=self.min_area_fraction,
            perspective=PerspectiveSize(p.y_far, p.area_far, p.y_near, p.area_near) if p else None,
            speed_traps=tuple(SpeedTrap(t.first_line, t.second_line, t.distance_m) for t in self.calibration.speed_traps),
            ground=self.calibration.ground(),
            interval_s=self.interval_s or interval_s,
            motorcycle_max=self.classes.motorcycle_max,
            truck_min=self.classes.truck_min,
        )

    def roi_mask(self, shape: tuple[int, int]) -> npt.NDArray[np.uint8] | None:
        """ROI polygon rasterised at frame ``shape`` ``(H, W)`` (None when unset)."""
        if self.roi is None:
            return None
        mask = np.zeros(shape, dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(np.asarray(self.roi)).astype(np.int32)], 255)
        return mask


class CamerasFile(_Strict):
    interval_s: int = Field(default=60, gt=0, le=3600)
    cameras: list[CameraConfig] = Field(min_length=1)


class CameraConfigError(ValueError):
    """``cameras.yaml`` is invalid; the message names the file, camera and field."""


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_cameras(path: Path) -> CamerasFile:
    """Read and validate ``cameras.yaml``; relative file sources resolve against its folder.

    Raises
    ------
    CameraConfigError
        One line per problem: ``<file>: camera '<id>' (cameras[i]) field <field>: <reason>``.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise CameraConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise CameraConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise CameraConfigError(f"{path}: expected a mapping with a 'cameras' list")
    cams = raw.get("cameras")
    problems: list[str] = []
    if isinstance(cams, list):
        seen: set[str] = set()
        for i, cam in enumerate(cams):
            cam_id = cam.get("id") if isinstance(cam, dict) else None
            who = f"camera {cam_id!r} (cameras[{i}])" if cam_id else f"cameras[{i}]"
            if not isinstance(cam, dict):
                problems.append(f"{path}: {who}: expected a mapping")
                continue
            if cam_id in seen:
                problems.append(f"{path}: {who} field id: duplicate camera id")
            seen.add(str(cam_id))
            try:
                CameraConfig.model_validate(cam)
            except ValidationError as exc:
                for err in exc.errors():
                    problems.append(f"{path}: {who} field {_loc(err['loc']) or '(camera)'}: {err['msg']}")
    if problems:
        raise CameraConfigError("\n".join(problems))
    try:
        parsed = CamerasFile.model_validate(raw)
    except ValidationError as exc:
        raise CameraConfigError("\n".join(f"{path}: field {_loc(e['loc'])}: {e['msg']}" for e in exc.errors())) from None
    base = path.resolve().parent
    resolved = []
    for cam in parsed.cameras:
        src = cam.source
        if "://" not in src and not Path(src).is_absolute():
            src = str((base / src).resolve())
        update: dict[str, Any] = {"source": src}
        if cam.people_model is not None and not Path(cam.people_model).is_absolute():
            update["people_model"] = str((base / cam.people_model).resolve())
        resolved.append(cam.model_copy(update=update))
    return parsed.model_copy(update={"cameras": resolved})
