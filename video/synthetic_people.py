"""A rendered walkway whose pedestrians are known: a people camera without real footage.

Walkers (a dark body, a lighter head) cross a textured floor seen from above at an angle,
left to right or right to left at 40-70 px/s along random rows. Every frame comes with the
head position of every walker, so a people model can be calibrated on one scene and the
counts of another scored exactly. It is **synthetic** and labelled so wherever it is shown.

A scene with ``period_s`` is periodic (walkers are drawn at t, t ± period), so a clip of
one period loops seamlessly and every walker crosses every vertical line exactly once per
loop: the true crossings per loop are the walkers moving each way, and the true mean
people present is the walkers' total time in the frame ÷ the period
(:meth:`WalkerScene.truth`). The demo's people camera replays such a clip
(:func:`demo_people_camera`).

Units: pixels, seconds, pixels/s.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from video.sources import Frame, FrameSource

__all__ = ["H", "SceneSource", "W", "Walker", "WalkerScene", "demo_people_camera", "write_walker_clip"]

W, H = 320, 240
#: The demo people camera's line (drawn downwards: ``in`` = moving left) and zones (frame pixels).
DEMO_LINE = (160.0, 0.0, 160.0, 240.0)
DEMO_ZONES = {"north": [[0, 0], [320, 0], [320, 120], [0, 120]], "south": [[0, 120], [320, 120], [320, 240], [0, 240]]}


@dataclass(frozen=True)
class Walker:
    """One pedestrian: enters at ``t0`` (s), head on row ``y`` (px), speed ``vx`` (px/s, sign =
    direction), body and head grey levels."""

    t0: float
    y: float
    vx: float
    body: int
    head: int

    def x(self, t: float) -> float:
        """Head column at time ``t`` (s), px."""
        return (-20.0 if self.vx > 0 else W + 20.0) + self.vx * (t - self.t0)


class WalkerScene:
    """Walkers over a textured floor, ``fps`` frames per second, ``seconds`` long.

    Parameters
    ----------
    seconds : float
        Length of the schedule, s.
    fps : float
        Frame rate, frames/s.
    rate_per_s : float
        Mean walkers entering per second.
    seed : int
        Random seed (floor and walkers).
    periodic : bool
        Repeat the schedule every ``seconds`` (a seamless loop).
    """

    def __init__(self, seconds: float = 60.0, fps: float = 8.0, rate_per_s: float = 0.9, seed: int = 3,
                 periodic: bool = False) -> None:
        rng = np.random.default_rng(seed)
        self.fps, self.n, self.seconds, self.periodic = fps, int(seconds * fps), seconds, periodic
        noise = rng.normal(0, 1, (H, W)).astype(np.float32)
        floor = cv2.GaussianBlur(noise, (0, 0), 3) * 60 + 130
        for x in range(0, W, 40):  # floor tiles
            floor[:, x] -= 25
        self.floor = np.clip(floor, 0, 255).astype(np.uint8)
        self.walkers: list[Walker] = []
        t = 0.0
        while t < seconds:
            t += float(rng.exponential(1.0 / rate_per_s))
            if periodic and t >= seconds:
                break  # one schedule per period
            speed = float(rng.uniform(40, 70)) * (1 if rng.random() < 0.6 else -1)
            self.walkers.append(Walker(t - 3.0, float(rng.uniform(30, 200)), speed,
                                       int(rng.integers(20, 70)), int(rng.integers(170, 230))))

    def _positions(self, t: float) -> Iterator[tuple[Walker, float]]:
        shifts = (-self.seconds, 0.0, self.seconds) if self.periodic else (0.0,)
        for w in self.walkers:
            for s in shifts:
                yield w, w.x(t + s)

    def heads(self, i: int) -> npt.NDArray[np.float64]:
        """Head positions ``(n, 2)`` inside the frame at frame ``i``, px."""
        pts = [(x, w.y) for w, x in self._positions(i / self.fps) if 0 <= x < W]
        return np.array(pts, dtype=np.float64).reshape(-1, 2)

    def image(self, i: int) -> npt.NDArray[np.uint8]:
        """Frame ``i`` (BGR)."""
        img = self.floor.copy()
        for w, x in self._positions(i / self.fps):
            if -15 < x < W + 15:
                cx, cy = round(x), round(w.y)
                cv2.ellipse(img, (cx, cy + 14), (6, 12), 0, 0, 360, w.body, -1)
                cv2.circle(img, (cx, cy), 5, w.head, -1)
        return np.asarray(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), dtype=np.uint8)

    def crossings(self, x_line: float, first: int, last: int) -> tuple[int, int]:
        """Heads crossing the vertical line ``x = x_line`` between frames ``first``..``last``:
        ``(moving left, moving right)``."""
        left = right = 0
        t0, t1 = first / self.fps, last / self.fps
        for w in self.walkers:
            for s in ((-self.seconds, 0.0, self.seconds) if self.periodic else (0.0,)):
                a, b = w.x(t0 + s), w.x(t1 + s)
                if min(a, b) < x_line <= max(a, b) or min(a, b) <= x_line < max(a, b):
                    left, right = (left + 1, right) if w.vx < 0 else (left, right + 1)
        return left, right

    def truth(self) -> dict[str, float]:
        """Per loop of a periodic scene: walkers moving ``left`` and ``right`` (each crosses
        every vertical line once) and ``mean_present``, the mean people whose head is in the
        frame (people)."""
        left = sum(w.vx < 0 for w in self.walkers)
        return {"left": left, "right": len(self.walkers) - left,
                "mean_present": round(sum(W / abs(w.vx) for w in self.walkers) / self.seconds, 2)}


class SceneSource(FrameSource):
    """Frames ``first``..``last`` (0-based, inclusive) of a scene as a frame source."""

    def __init__(self, scene: WalkerScene, first: int, last: int, wall0: float = 1_767_225_600.0) -> None:
        self.scene, self.first, self.last, self.wall0 = scene, first, last, wall0
        self.fps = scene.fps
        self.name = "generated scene"

    def __iter__(self) -> Iterator[Frame]:
        for i in range(self.first, self.last + 1):
            t = i / self.scene.fps
            yield Frame(self.scene.image(i), i, t, self.wall0 + t)


def write_walker_clip(path: Path, scene: WalkerScene) -> Path:
    """Render the scene's ``seconds`` to ``path`` (Motion-JPEG ``.avi``); returns ``path``.

    Raises
    ------
    RuntimeError
        OpenCV cannot write the file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), scene.fps, (W, H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {tmp}")
    try:
        for i in range(scene.n):
            writer.write(scene.image(i))
    finally:
        writer.release()
    tmp.replace(path)
    return path


def demo_people_camera(data_dir: Path, camera_id: str = "walkway-1", interval_s: int = 15) -> dict[str, Any]:
    """A ``cameras.yaml`` entry for the demo's people camera (files written once into ``data_dir/video``).

    The camera replays a 60-s periodic walker clip (8 frames/s, seed 5) with a people model
    calibrated on 20 s of a different walker scene (seed 11): people per zone (``north``,
    ``south``) and crossings of the line ``gate``, labelled synthetic with the true figures
    per loop in its description.
    """
    from video.people import fit_people_model
    from video.people_features import CellGrid, PeopleConfig, to_grey

    folder = Path(data_dir) / "video"
    scene = WalkerScene(seconds=60.0, seed=5, periodic=True)
    clip = folder / "synthetic-walkway.avi"
    if not clip.is_file():
        write_walker_clip(clip, scene)
    model = folder / "synthetic-walkway-people.npz"
    if not model.is_file():
        calib = WalkerScene(seconds=20.0, seed=11)
        config = PeopleConfig()
        grid = CellGrid.for_frame((W, H), config)
        greys = np.stack([to_grey(calib.image(i), grid) for i in range(calib.n)])
        heads = [calib.heads(i) for i in range(calib.n)]
        fitted = fit_people_model(greys, grid, [len(h) for h in heads], heads, None, config, rounds=80)
        tmp = fitted.save(folder / "synthetic-walkway-people.part.npz")
        tmp.replace(model)
    truth = scene.truth()
    return {
        "id": camera_id, "source": str(clip), "loop": True, "interval_s": interval_s, "synthetic": True,
        "description": (f"Synthetic walkway rendered by the platform (video.synthetic_people), not real footage: "
                        f"per 60 s loop {truth['left']} walkers cross 'gate' in (moving left) and "
                        f"{truth['right']} out, {truth['mean_present']} people in view on average"),
        "people_model": str(model), "people_every_s": 1.0 / scene.fps,
        "zones": [{"id": k, "polygon": v} for k, v in DEMO_ZONES.items()],
        "people_lines": [{"id": "gate", "points": list(DEMO_LINE)}],
    }
