"""Generated pedestrian scenes with exact ground truth (no shared data needed): the walker scene
of :mod:`video.synthetic_people` under the names the people tests use."""

from __future__ import annotations

from video.synthetic_people import H, SceneSource, W, Walker
from video.synthetic_people import WalkerScene as Scene

__all__ = ["H", "Scene", "SceneSource", "W", "Walker"]
