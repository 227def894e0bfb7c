from __future__ import annotations

import numpy as np
import pytest

from video.foreground import ForegroundConfig, ForegroundModel


def _scene(t: int) -> np.ndarray:
    rng = np.random.default_rng(t)
    frame = np.full((180, 320, 3), 120, np.uint8) + rng.integers(0, 4, (180, 320, 3), dtype=np.uint8)
    x = 10 + 6 * t
    frame[60:100, x:x + 50] = (20, 20, 200)  # a red car moving right
    return frame


def test_moving_object_is_foreground_and_roi_cuts_it() -> None:
    model = ForegroundModel(ForegroundConfig(history=50))
    for t in range(30):
        mask = model.apply(_scene(t))
    ys, xs = np.nonzero(mask)
    assert ys.min() >= 55 and ys.max() <= 105
    assert xs.min() >= 180 and xs.max() <= 240  # the car spans x 184..233 in frame 29
    assert np.count_nonzero(mask) > 0.7 * 40 * 50
    roi = np.zeros((180, 320), np.uint8)
    roi[:, :200] = 255
    clipped = ForegroundModel(ForegroundConfig(history=50), roi=roi)
    for t in range(30):
        m2 = clipped.apply(_scene(t))
    assert np.count_nonzero(m2[:, 200:]) == 0 and np.count_nonzero(m2) > 0


def test_downscaled_model_and_shadow_values_are_dropped() -> None:
    model = ForegroundModel(ForegroundConfig(model_width=160))
    frame = _scene(0)
    mask = model.apply(frame)
    assert mask.shape == (90, 160) and model.scale == 2.0
    assert model.full_resolution(mask, (180, 320)).shape == (180, 320)
    raw = np.zeros((90, 160), np.uint8)
    raw[10:40, 10:40] = 127  # shadow label of the OpenCV subtractors
    raw[50:80, 50:80] = 255
    clean = model.clean(raw)
    assert clean[20, 20] == 0 and clean[60, 60] == 255


@pytest.mark.parametrize("bad", [{"method": "gmm"}, {"history": 0}, {"median": 4}, {"shadow_threshold": 0}])
def test_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ValueError):
        ForegroundConfig(**bad)
