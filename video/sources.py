"""Frame sources: video files, RTSP/HTTP streams, image folders and tar archives of frames.

Every source yields :class:`Frame` objects with a frame index, a stream time ``t`` (seconds
since the first frame: the container's timestamp when it has one, else index ÷ frame rate)
and a wall-clock time ``wall`` (epoch seconds: the open time plus ``t`` for files and image
sequences, the read time for live streams) and, when known, a ``duration_s`` (the recording's
length, s). Sources can skip frames (``stride``) and
downscale (``max_width``). :class:`ReconnectingSource` reopens a failed live stream with
exponential backoff and reports ``online``/``offline`` changes.
"""

from __future__ import annotations

import fnmatch
import logging
import tarfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "IMAGE_SUFFIXES",
    "Backoff",
    "Frame",
    "FrameSource",
    "ImageFolderSource",
    "ReconnectingSource",
    "SourceError",
    "TarFramesSource",
    "VideoSource",
    "is_live",
    "open_source",
    "open_tar",
]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_LIVE_PREFIXES = ("rtsp://", "rtsps://", "http://", "https://", "rtmp://", "udp://", "tcp://")


class SourceError(RuntimeError):
    """A source cannot be opened or read (the message names it)."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    Attributes
    ----------
    image : ndarray (H, W, 3) uint8
        BGR pixels (after optional downscaling).
    index : int
        Position in the original stream (counts skipped frames), starting at 0.
    t : float
        Stream time since the first frame, s.
    wall : float
        Wall-clock time, Unix epoch s.
    """

    image: npt.NDArray[np.uint8]
    index: int
    t: float
    wall: float


def is_live(spec: str) -> bool:
    """True for network stream URLs (they are reconnected rather than ended)."""
    return spec.lower().startswith(_LIVE_PREFIXES)


def _resize(image: npt.NDArray[np.uint8], max_width: int | None) -> npt.NDArray[np.uint8]:
    if max_width is None or image.shape[1] <= max_width:
        return image
    h = round(image.shape[0] * max_width / image.shape[1])
    return np.asarray(cv2.resize(image, (max_width, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)


class FrameSource:
    """Base class: iterate to get frames; ``close()`` releases the device."""

    name: str = "source"
    fps: float = 0.0
    stride: int = 1
    max_width: int | None = None
    #: Length of a recording (s), None for a live stream or when the container does not say
    #: (a frame archive knows it once its iteration has begun).
    duration_s: float | None = None

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (default: nothing)."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoSource(FrameSource):
    """A file or stream URL opened with ``cv2.VideoCapture``.

    Parameters
    ----------
    spec : str
        File path or URL (``rtsp://``, ``http://`` ...).
    stride : int
        Keep one frame in ``stride`` (skipped frames are grabbed, not decoded).
    max_width : int, optional
        Downscale wider frames to this width, pixels.
    fps : float, optional
        Frame rate to assume when the container does not give one (frames/s).
    """

    def __init__(self, spec: str, stride: int = 1, max_width: int | None = None, fps: float | None = None) -> None:
        if stride < 1:
            raise ValueError("stride must be >= 1")
        live = is_live(spec)
        if not live and not Path(spec).is_file():
            raise SourceError(f"video file not found: {spec}")
        if not live and Path(spec).stat().st_size == 0:
            raise SourceError(f"{spec}: empty file (0 bytes), not a video")
        self.name, self.stride, self.max_width, self.live = spec, stride, max_width, live
        self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            raise SourceError(f"cannot open video source {spec}")
        native = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = native if 1.0 <= native <= 240.0 else float(fps or 25.0)
        frames = float(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0)
        self.duration_s = frames / self.fps if not live and frames > 0 else None
        self._opened = time.time()

    def __iter__(self) -> Iterator[Frame]:
        index = -1
        while True:
            index += 1
            if index % self.stride:
                if not self._cap.grab():
                    return
                continue
            ok, image = self._cap.read()
            if not ok or image is None:
                if self.live:
                    raise SourceError(f"stream {self.name} stopped delivering frames")
                return
            msec = float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0)
            t = msec / 1000.0 if msec > 0 and not self.live else index / self.fps
            wall = time.time() if self.live else self._opened + t
            yield Frame(_resize(np.asarray(image, dtype=np.uint8), self.max_width), index, t, wall)

    def close(self) -> None:
        self._cap.release()


def _decode(data: bytes, name: str) -> npt.NDArray[np.uint8]:
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"cannot decode image {name}")
    return np.asarray(image, dtype=np.uint8)


class ImageFolderSource(FrameSource):
    """Images of a folder in file-name order, at ``fps`` frames per second.

    Parameters
    ----------
    folder : Path
        Directory of ``.jpg/.png/.bmp`` frames.
    pattern : str
        Glob on file names (default all images).
    """

    def __init__(self, folder: Path, fps: float = 25.0, stride: int = 1, max_width: int | None = None, pattern: str = "*") -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise SourceError(f"image folder not found: {folder}")
        self.files = sorted(p for p in folder.glob(pattern) if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"no images matching {pattern!r} in {folder}")
        self.name, self.fps, self.stride, self.max_width = str(folder), fps, stride, max_width
        self.duration_s = len(self.files) / fps
        self._opened = time.time()

    def __iter__(self) -> Iterator[Frame]:
        for index in range(0, len(self.files), self.stride):
            path = self.files[index]
            image = _decode(path.read_bytes(), str(path))
            t = index / self.fps
            yield Frame(_resize(image, self.max_width), index, t, self._opened + t)


class TarFramesSource(FrameSource):
    """Image frames stored in a tar archive (optionally gzip), in member-name order.

    Parameters
    ----------
    archive : Path
        ``.tar`` / ``.tar.gz`` file.
    pattern : str
        ``fnmatch`` pattern on member names, e.g. ``"*/input/*.jpg"``.
    first, last : int, optional
        Keep only the ``first``..``last`` (1-based, inclusive) matching frames.
    """

    def __init__(
        self, archive: Path, pattern: str = "*", fps: float = 25.0, stride: int = 1,
        max_width: int | None = None, first: int | None = None, last: int | None = None,
    ) -> None:
        archive = Path(archive)
        if not archive.is_file():
            raise SourceError(f"frame archive not found: {archive}")
        self.archive, self.pattern = archive, pattern
        self.name, self.fps, self.stride, self.max_width = str(archive), fps, stride, max_width
        self.first, self.last = first, last
        self._opened = time.time()

    def members(self) -> dict[str, bytes]:
        """Read every matching member into memory (name → bytes)."""
        out: dict[str, bytes] = {}
        with open_tar(self.archive) as tar:
            for member in tar:
                if member.isfile() and fnmatch.fnmatch(member.name, self.pattern):
                    fh = tar.extractfile(member)
                    if fh is not None:
                        out[member.name] = fh.read()
        if not out:
            raise SourceError(f"no members matching {self.pattern!r} in {self.archive}")
        return out

    def __iter__(self) -> Iterator[Frame]:
        data = self.members()
        names = [n for n in sorted(data) if Path(n).suffix.lower() in IMAGE_SUFFIXES]
        lo = (self.first or 1) - 1
        hi = self.last if self.last is not None else len(names)
        self.duration_s = max(min(hi, len(names)) - lo, 0) / self.fps
        for index in range(lo, min(hi, len(names)), self.stride):
            t = index / self.fps
            image = _decode(data[names[index]], f"{self.archive}:{names[index]}")
            yield Frame(_resize(image, self.max_width), index, t, self._opened + t)


@contextmanager
def open_tar(path: Path) -> Iterator[tarfile.TarFile]:
    """Open a (compressed) tar archive; a damaged one raises :class:`SourceError` naming it."""
    try:
        tar = tarfile.open(path)  # noqa: SIM115 - closed below, after the error mapping
    except tarfile.TarError as exc:
        reason = str(exc).splitlines()[-1].strip(" -") if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path}: not a readable tar archive ({reason})") from None
    except OSError as exc:  # a folder, or a file that cannot be read
        raise SourceError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        yield tar
    finally:
        tar.close()


def open_source(spec: str | Path, *, stride: int = 1, max_width: int | None = None, fps: float | None = None, pattern: str = "*") -> FrameSource:
    """Open a source from a path or URL.

    A directory is an image sequence, a ``.tar``/``.tar.gz``/``.tgz`` an archive of frames,
    anything else a video file or stream URL read by OpenCV.
    """
    text = str(spec)
    if is_live(text):
        return VideoSource(text, stride=stride, max_width=max_width, fps=fps)
    path = Path(text)
    if path.is_dir():
        return ImageFolderSource(path, fps=fps or 25.0, stride=stride, max_width=max_width, pattern=pattern)
    if text.endswith((".tar", ".tar.gz", ".tgz")):
        return TarFramesSource(path, pattern=pattern, fps=fps or 25.0, stride=stride, max_width=max_width)
    return VideoSource(text, stride=stride, max_width=max_width, fps=fps)


@dataclass
class Backoff:
    """Exponential reconnect delays: ``initial_s``, ×``factor`` each failure, capped at ``max_s``."""

    initial_s: float = 0.5
    factor: float = 2.0
    max_s: float = 30.0
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.initial_s * self.factor ** self.failures, self.max_s)
        self.failures += 1
        return float(delay)

    def reset(self) -> None:
        self.failures = 0


class ReconnectingSource(FrameSource):
    """Wrap a source factory; reopen with backoff whenever opening or reading fails.

    Parameters
    ----------
    factory : callable
        Returns a fresh :class:`FrameSource` (may raise).
    backoff : Backoff
        Delay policy between attempts.
    on_status : callable, optional
        Called with ``True``/``False`` when the source comes online / goes offline.
    sleep : callable
        Waits a number of seconds (``time.sleep``; tests and workers may pass an
        interruptible wait).
    max_attempts : int, optional
        Give up after this many consecutive failures (``None``: never).
    on_eof : {"stop", "restart", "reconnect"}
        When the inner source ends normally: stop (a file), reopen it at once without going
        offline (a looping file), or treat it as a failure and reconnect with backoff (a
        live stream never ends normally).

    Frame indices, stream times and wall-clock times keep increasing across reconnections.
    """

    def __init__(
        self,
        factory: Callable[[], FrameSource],
        backoff: Backoff | None = None,
        on_status: Callable[[bool], None] | None = None,
        sleep: Callable[[float], object] = time.sleep,
        max_attempts: int | None = None,
        on_eof: Literal["stop", "restart", "reconnect"] = "stop",
        name: str = "source",
    ) -> None:
        self.factory, self.backoff = factory, backoff or Backoff()
        self.on_status, self.sleep, self.max_attempts = on_status, sleep, max_attempts
        if on_eof not in ("stop", "restart", "reconnect"):
            raise ValueError(f"on_eof must be stop, restart or reconnect, got {on_eof!r}")
        self.on_eof, self.name = on_eof, name
        self.reconnects = 0
        self.online = False
        self._stopped = False

    def stop(self) -> None:
        """Make the iteration end at the next frame or retry."""
        self._stopped = True

    def _set_online(self, value: bool) -> None:
        if value != self.online:
            self.online = value
            if self.on_status is not None:
                self.on_status(value)

    def __iter__(self) -> Iterator[Frame]:
        index_offset, t_offset = 0, 0.0
        last_wall: float | None = None
        while not self._stopped:
            try:
                source = self.factory()
            except Exception as exc:
                if not self._retry(f"open failed: {exc}"):
                    return
                continue
            last: Frame | None = None
            wall_offset = 0.0
            try:
                with source:
                    for frame in source:
                        if self._stopped:
                            return
                        if last is None and last_wall is not None and frame.wall <= last_wall:
                            # a reopened file restarts its clock: keep wall time increasing
                            wall_offset = last_wall + 1.0 / max(source.fps, 1.0) - frame.wall
                        last = Frame(frame.image, frame.index + index_offset, frame.t + t_offset, frame.wall + wall_offset)
                        last_wall = last.wall
                        self._set_online(True)
                        self.backoff.reset()
                        yield last
                if self.on_eof == "stop":
                    return
                reason = "stream ended"
            except Exception as exc:
                reason = f"read failed: {exc}"
            if last is not None:
                index_offset, t_offset = last.index + 1, last.t + 1.0 / max(source.fps, 1.0)
            if reason == "stream ended" and self.on_eof == "restart" and last is not None:
                continue  # replay a looping file: no outage, no backoff
            if not self._retry(reason):
                return

    def _retry(self, reason: str) -> bool:
        self._set_online(False)
        if self.max_attempts is not None and self.backoff.failures >= self.max_attempts:
            log.warning("%s: giving up after %d attempts (%s)", self.name, self.backoff.failures, reason)
            return False
        delay = self.backoff.next_delay()
        self.reconnects += 1
        log.warning("%s: %s; reconnecting in %.1f s", self.name, reason, delay)
        self.sleep(delay)
        return not self._stopped
