"""A rendered street scene whose true counts are known: a camera without real footage.

Where no real clip is at hand (a clean machine without ``../shared/data``), the demo and the
tests use a clip rendered here: a camera looking down on a four-lane road (two lanes up the
image, two down) with cars, trucks/buses and motorcycles driving through at constant speeds,
a textured road surface, lane markings, a shadowed verge and sensor noise. It is **synthetic**
and labelled so wherever it is shown.

The traffic is periodic with period ``period_s``: the clip holds exactly one period, so a
looping replay is seamless, and every vehicle of the schedule crosses every horizontal line
across the road exactly once per period, in its lane's direction. The true count of a line
per loop is therefore the schedule itself (:meth:`StreetScene.true_counts`). Lines drawn
right to left, as in :data:`LINES`, count vehicles moving up the image as ``in``
(see :mod:`video.counting`).

Units: pixels, seconds, pixels/s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["LINES", "StreetScene", "Vehicle", "camera_config", "write_clip"]

#: Counting lines of the scene (x1, y1, x2, y2): right to left across the whole road.
LINES = {"lanes-150": (300.0, 150.0, 30.0, 150.0), "lanes-100": (300.0, 100.0, 30.0, 100.0)}

#: Lane centre x (pixels) and direction (-1: moving up the image, +1: moving down).
_LANES = ((78.0, 1), (128.0, 1), (192.0, -1), (242.0, -1))
#: Class: (width, length) in pixels.
_SIZES = {"car": (24, 40), "truck_bus": (30, 92), "motorcycle": (10, 20)}


@dataclass(frozen=True)
class Vehicle:
    """One vehicle of the periodic schedule.

    Attributes
    ----------
    lane : int
        Index into the scene's lanes.
    t0 : float
        Time its centre is at the top (down lanes) or bottom (up lanes) edge of the frame, s.
    speed : float
        Pixels per second along its lane.
    vehicle_class : str
        ``car``, ``truck_bus`` or ``motorcycle``.
    colour : tuple of int
        BGR.
    """

    lane: int
    t0: float
    speed: float
    vehicle_class: str
    colour: tuple[int, int, int]


@dataclass
class StreetScene:
    """A periodic street scene (see the module docstring).

    Parameters
    ----------
    seed : int
        Schedule and texture seed.
    period_s : float
        Length of one period (and of the clip), s.
    fps : float
        Frames per second.
    width, height : int
        Frame size, pixels.
    vehicles_per_min : float
        Mean arrivals per lane and minute.
    """

    seed: int = 1
    period_s: float = 60.0
    fps: float = 15.0
    width: int = 320
    height: int = 240
    vehicles_per_min: float = 6.0
    vehicles: list[Vehicle] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        if not self.vehicles:
            self.vehicles = self._schedule(rng)
        self._background = self._road(rng)
        # sensor noise: a bank of noise images cycled frame by frame (rendering stays cheap)
        noise = np.random.default_rng(self.seed + 1).normal(0, 2.0, (8, self.height, self.width, 3))
        self._noise = np.round(noise).astype(np.int16)

    def _schedule(self, rng: np.random.Generator) -> list[Vehicle]:
        out: list[Vehicle] = []
        n = max(1, round(self.vehicles_per_min * self.period_s / 60.0))
        for lane in range(len(_LANES)):
            # evenly spread with jitter: vehicles of a lane never overlap (one speed per lane)
            speed = float(rng.uniform(70.0, 110.0))
            slots = (np.arange(n) + rng.uniform(0.15, 0.85, n)) * self.period_s / n
            for t0 in slots:
                cls = str(rng.choice(["car", "car", "car", "car", "truck_bus", "motorcycle"]))
                hue = int(rng.integers(0, 180))
                hsv = np.array([[[hue, 200, int(rng.choice([60, 230]))]]], dtype=np.uint8)
                colour = np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR))[0, 0]
                out.append(Vehicle(lane, float(t0), speed, cls, (int(colour[0]), int(colour[1]), int(colour[2]))))
        return out

    def _road(self, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
        h, w = self.height, self.width
        img = np.zeros((h, w, 3), np.float32)
        img[:] = (70, 120, 80)  # verge
        img[:, 50:270] = (105, 105, 105)  # asphalt
        img[:, 156:164] = (80, 140, 90)  # median strip
        texture = np.asarray(cv2.GaussianBlur(rng.normal(0, 18, (h, w)).astype(np.float32), (0, 0), 1.0), np.float32)
        texture[:, 270:] *= np.float32(0.2)  # mown grass on the right verge: smooth
        img += texture[..., None]
        for x in (50, 154, 166, 268):  # solid edge lines
            img[:, x:x + 2] = 225
        for x in (103, 217):  # dashed lane lines: 12 px dash, 12 px gap
            for y in range(0, h, 24):
                img[y:y + 12, x:x + 2] = 225
        for y in range(206, 236, 6):  # a pedestrian crossing near the camera
            img[y:y + 3, 56:152] = 215
            img[y:y + 3, 168:264] = 215
        for _ in range(10):  # trees and bushes on the left verge
            x = int(rng.integers(4, 44))
            y, r = int(rng.integers(0, h)), int(rng.integers(5, 14))
            shade = float(rng.uniform(0.5, 0.8))
            cv2.circle(img, (x, y), r, (40 * shade, 110 * shade, 50 * shade), -1)
        cv2.rectangle(img, (6, 20), (36, 62), (150, 160, 175), -1)  # a kiosk roof
        cv2.rectangle(img, (282, 120), (286, 160), (60, 60, 60), -1)  # a sign post and its panel
        cv2.rectangle(img, (276, 112), (300, 126), (200, 120, 30), -1)
        img[:, :50] *= 0.8  # a shadowed verge
        return np.clip(img, 0, 255).astype(np.uint8)

    def _centre_y(self, v: Vehicle, t: float) -> float:
        """Centre row of ``v`` at time ``t`` (periodic, one pass per period)."""
        _, direction = _LANES[v.lane]
        span = self.height + 200.0  # enters 100 px above/below the frame, leaves 100 px beyond
        travel = (t - v.t0) % self.period_s * v.speed
        # one pass takes span/speed s (< period), then the vehicle waits off-screen
        along = travel - 100.0
        if along > span:
            return -1e6
        return along if direction > 0 else self.height - along

    def frame(self, t: float) -> npt.NDArray[np.uint8]:
        """The BGR frame at time ``t`` (s, any real: the scene repeats every period)."""
        img = self._background.copy()
        for v in self.vehicles:
            y = self._centre_y(v, t)
            if y < -120 or y > self.height + 120:
                continue
            x = _LANES[v.lane][0]
            w, length = _SIZES[v.vehicle_class]
            p1 = (round(x - w / 2), round(y - length / 2))
            p2 = (round(x + w / 2), round(y + length / 2))
            cv2.rectangle(img, (p1[0] + 4, p1[1] + 4), (p2[0] + 4, p2[1] + 4), (45, 45, 45), -1)  # shadow
            cv2.rectangle(img, p1, p2, v.colour, -1)
            glass = (round(x - w / 2 + 3), round(y - length / 4))
            cv2.rectangle(img, glass, (round(x + w / 2 - 3), round(y)), (40, 30, 30), -1)
        noise = self._noise[round(t % self.period_s * self.fps) % len(self._noise)]
        return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)

    def true_counts(self) -> dict[str, dict[str, int]]:
        """Vehicles crossing each line of :data:`LINES` per period: ``{line: {in, out}}``."""
        up = sum(1 for v in self.vehicles if _LANES[v.lane][1] < 0)
        return {line: {"in": up, "out": len(self.vehicles) - up} for line in LINES}

    def true_counts_by_class(self) -> dict[str, dict[str, int]]:
        """Vehicles per period by direction (``in``: up the image) and class."""
        out: dict[str, dict[str, int]] = {"in": {}, "out": {}}
        for v in self.vehicles:
            d = out["in" if _LANES[v.lane][1] < 0 else "out"]
            d[v.vehicle_class] = d.get(v.vehicle_class, 0) + 1
        return out


def write_clip(path: Path, scene: StreetScene | None = None) -> Path:
    """Render one period of ``scene`` to ``path`` (Motion-JPEG ``.avi``); returns ``path``.

    Raises
    ------
    RuntimeError
        OpenCV cannot write the file.
    """
    scene = scene or StreetScene()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), scene.fps, (scene.width, scene.height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {tmp}")
    try:
        for i in range(round(scene.period_s * scene.fps)):
            writer.write(scene.frame(i / scene.fps))
    finally:
        writer.release()
    tmp.replace(path)
    return path


def camera_config(camera_id: str, clip: Path, interval_s: int = 60) -> dict[str, object]:
    """A ``cameras.yaml`` camera entry for a clip of this scene (looping, labelled synthetic)."""
    return {
        "id": camera_id,
        "source": str(clip),
        "loop": True,
        "interval_s": interval_s,
        "synthetic": True,
        "description": "Synthetic street scene rendered by the platform (video.synthetic): not real footage",
        "lines": [{"id": k, "points": list(v)} for k, v in LINES.items()],
        "calibration": {"perspective": {"y_far": 40, "area_far": 900, "y_near": 200, "area_near": 1000}},
    }
