"""Foreground segmentation: a background model with shadow suppression, ROI and morphology.

All per-frame work is whole-frame OpenCV calls (no Python loops over pixels). The background
model runs on a downscaled copy of the frame when the frame is wider than
:attr:`ForegroundConfig.model_width`; the mask is returned at the model resolution together
with the scale factor back to frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["ForegroundConfig", "ForegroundModel"]

Mask = npt.NDArray[np.uint8]
Image = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class ForegroundConfig:
    """Settings of the background model.

    Attributes
    ----------
    method : {"knn", "mog2"}
        OpenCV background subtractor. ``knn`` (default) scores better on CDnet highway
        (F ~0.95 vs ~0.87 for a tuned MOG2) at similar cost once downscaled.
    history : int
        Frames the model remembers (frames).
    threshold : float
        Squared-distance threshold: ``dist2Threshold`` for KNN, ``varThreshold`` for MOG2
        (squared 8-bit intensity units).
    shadow_threshold : float
        A pixel darker than the background by a factor in ``[shadow_threshold, 1]`` with the
        same chromaticity is a shadow and is dropped (unitless, 0..1).
    model_width : int
        Frames wider than this are downscaled (INTER_AREA) before modelling, pixels. The mask
        is returned at that width; 320 keeps 640x360 streams cheap (a quarter of the pixels).
    median : int
        Median filter aperture on the raw mask (odd pixels, 0 disables).
    open_size, close_size : int
        Elliptic opening (removes speckle) and closing (joins vehicle parts) kernel
        diameters at model resolution, pixels (0 disables).
    fill_holes : bool
        Fill the inside of every outer contour (vehicle bodies with road-coloured roofs).
    """

    method: Literal["knn", "mog2"] = "knn"
    history: int = 500
    threshold: float = 400.0
    shadow_threshold: float = 0.5
    model_width: int = 320
    median: int = 5
    open_size: int = 3
    close_size: int = 9
    fill_holes: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("knn", "mog2"):
            raise ValueError(f"method must be 'knn' or 'mog2', got {self.method!r}")
        if self.history < 1:
            raise ValueError("history must be >= 1 frame")
        if self.threshold <= 0:
            raise ValueError("threshold must be > 0")
        if not 0.0 < self.shadow_threshold <= 1.0:
            raise ValueError("shadow_threshold must be in (0, 1]")
        if self.model_width < 16:
            raise ValueError("model_width must be >= 16 pixels")
        if self.median and self.median % 2 == 0:
            raise ValueError("median aperture must be odd")


def _kernel(size: int) -> Mask | None:
    if size <= 0:
        return None
    return np.asarray(cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size)), dtype=np.uint8)


class ForegroundModel:
    """Stateful foreground extractor: feed frames in order, get binary masks.

    Parameters
    ----------
    config : ForegroundConfig
        Model settings.
    roi : ndarray of uint8, optional
        Region-of-interest mask at frame resolution (non-zero = analysed).
    """

    def __init__(self, config: ForegroundConfig | None = None, roi: Mask | None = None) -> None:
        self.config = config or ForegroundConfig()
        c = self.config
        if c.method == "knn":
            knn = cv2.createBackgroundSubtractorKNN(
                history=c.history, dist2Threshold=c.threshold, detectShadows=True
            )
            knn.setShadowThreshold(c.shadow_threshold)
            self._subtractor: cv2.BackgroundSubtractor = knn
        else:
            mog = cv2.createBackgroundSubtractorMOG2(
                history=c.history, varThreshold=c.threshold, detectShadows=True
            )
            mog.setShadowThreshold(c.shadow_threshold)
            self._subtractor = mog
        self._open = _kernel(c.open_size)
        self._close = _kernel(c.close_size)
        self._roi_full = roi
        self._roi: Mask | None = None
        self._size: tuple[int, int] | None = None  # model (w, h)
        self.scale = 1.0  # frame pixels per model pixel
        self._frames = 0  # frames subtracted so far (seeds the RNG, see `subtract`)

    def _setup(self, frame: Image) -> None:
        h, w = frame.shape[:2]
        if w > self.config.model_width:
            mw = self.config.model_width
            mh = max(1, round(h * mw / w))
            self._size = (mw, mh)
            self.scale = w / mw
        else:
            self._size = (w, h)
            self.scale = 1.0
        if self._roi_full is not None:
            if self._roi_full.shape[:2] != (h, w):
                raise ValueError(
                    f"ROI mask is {self._roi_full.shape[1]}x{self._roi_full.shape[0]}, frames are {w}x{h}"
                )
            roi = cv2.resize(self._roi_full, self._size, interpolation=cv2.INTER_NEAREST)
            self._roi = np.where(roi > 0, 255, 0).astype(np.uint8)

    def model_frame(self, frame: Image) -> Image:
        """Return ``frame`` resized to model resolution (the input of the subtractor)."""
        if self._size is None:
            self._setup(frame)
        assert self._size is not None
        if self.scale != 1.0:
            return np.asarray(cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
        return frame

    def apply(self, frame: Image, learning_rate: float = -1.0) -> Mask:
        """Update the model with ``frame`` and return its foreground mask.

        Parameters
        ----------
        frame : ndarray (H, W, 3) or (H, W) of uint8
            Next frame, BGR or grey.
        learning_rate : float
            OpenCV learning rate (0..1, -1 = automatic from ``history``).

        Returns
        -------
        ndarray (h, w) of uint8
            255 = moving object, 0 = background or shadow, at model resolution
            (multiply coordinates by :attr:`scale` for frame pixels).
        """
        return self.clean(self.subtract(frame, learning_rate))

    def subtract(self, frame: Image, learning_rate: float = -1.0) -> Mask:
        """Resize ``frame`` to model resolution and update the subtractor; return its raw
        mask (255 foreground, 127 shadow, 0 background) before any cleaning."""
        # the subtractors draw from OpenCV's per-thread RNG (cv::theRNG): seeded from the frame
        # count, the masks depend on the frames alone, not on what else ran in the thread before
        cv2.setRNGSeed(self._frames)
        self._frames += 1
        raw = self._subtractor.apply(self.model_frame(frame), learningRate=learning_rate)
        return np.asarray(raw, dtype=np.uint8)

    def clean(self, raw: Mask) -> Mask:
        """Turn a raw subtractor mask (255 fg, 127 shadow) into a clean binary mask."""
        _, mask = cv2.threshold(raw, 200, 255, cv2.THRESH_BINARY)  # drops shadows (127)
        if self._roi is not None:
            mask = cv2.bitwise_and(mask, self._roi)
        if self.config.median:
            mask = cv2.medianBlur(mask, self.config.median)
        if self._open is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._open)
        if self._close is not None:
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self._close)
        if self.config.fill_holes:
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            if contours:
                cv2.drawContours(mask, contours, -1, 255, thickness=cv2.FILLED)
        if self._roi is not None:
            mask = cv2.bitwise_and(mask, self._roi)
        return np.asarray(mask, dtype=np.uint8)

    def full_resolution(self, mask: Mask, shape: tuple[int, int]) -> Mask:
        """Resize a model-resolution mask to frame ``shape`` ``(H, W)`` (nearest neighbour)."""
        if mask.shape[:2] == shape:
            return mask
        return np.asarray(
            cv2.resize(mask, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST), dtype=np.uint8
        )
