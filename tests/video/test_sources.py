from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from video.sources import (
    Backoff,
    Frame,
    FrameSource,
    ImageFolderSource,
    ReconnectingSource,
    SourceError,
    TarFramesSource,
    VideoSource,
    open_source,
)


def test_video_file_timestamps_stride_and_downscale(clip1: Path) -> None:
    with VideoSource(str(clip1)) as src:
        frames = [f for _, f in zip(range(30), src, strict=False)]
    assert src.fps == pytest.approx(15.0, abs=0.01)
    assert [f.index for f in frames[:3]] == [0, 1, 2]
    assert frames[0].image.shape == (240, 320, 3)
    np.testing.assert_allclose(np.diff([f.t for f in frames]), 1 / 15.0, atol=1e-3)
    with open_source(clip1, stride=3, max_width=160) as src:
        skipped = [f for _, f in zip(range(10), src, strict=False)]
    assert [f.index for f in skipped[:4]] == [0, 3, 6, 9]
    assert skipped[1].t == pytest.approx(frames[3].t, abs=1e-3)
    assert skipped[0].image.shape == (120, 160, 3)
    with pytest.raises(SourceError, match="not found"):
        VideoSource("/nonexistent/clip.avi")


def test_image_folder_and_tar_archive(clip2: Path, tmp_path: Path) -> None:
    with VideoSource(str(clip2)) as src:
        for frame in src:
            cv2.imwrite(str(tmp_path / f"f{frame.index:04d}.jpg"), frame.image)
            if frame.index == 9:
                break
    cdnet_archive = tmp_path / "sequence.tar.gz"  # laid out as a CDnet sequence: seq/input/in000001.jpg ...
    with tarfile.open(cdnet_archive, "w:gz") as tar:
        for i in range(10):
            tar.add(tmp_path / f"f{i:04d}.jpg", arcname=f"seq/input/in{i + 1:06d}.jpg")
    folder = list(ImageFolderSource(tmp_path, fps=10.0, stride=2))
    assert [f.index for f in folder] == [0, 2, 4, 6, 8] and folder[1].t == pytest.approx(0.2)
    src = TarFramesSource(cdnet_archive, pattern="*/input/in00000*.jpg", first=2, last=5)
    frames = list(src)
    assert [f.index for f in frames] == [1, 2, 3, 4] and frames[0].image.shape == (240, 320, 3)
    with pytest.raises(SourceError, match="no members"):
        list(TarFramesSource(cdnet_archive, pattern="*/nothing/*.jpg"))
    broken = tmp_path / "broken.tar"
    with tarfile.open(broken, "w") as tar:
        (tmp_path / "x.jpg").write_bytes(b"not a jpeg")
        tar.add(tmp_path / "x.jpg", arcname="seq/x.jpg")
    with pytest.raises(SourceError, match=r"broken.tar:seq/x.jpg"):
        list(open_source(broken))


class DiesAfter(FrameSource):
    """A real clip that raises after ``n`` frames, like a camera whose network drops."""

    def __init__(self, clip: Path, n: int) -> None:
        self.inner = VideoSource(str(clip))
        self.fps, self.n, self.duration_s = self.inner.fps, n, self.inner.duration_s

    def __iter__(self) -> Iterator[Frame]:
        for i, frame in enumerate(self.inner):
            if i == self.n:
                raise ConnectionError("stream lost")
            yield frame

    def close(self) -> None:
        self.inner.close()


def test_reconnect_with_backoff_after_the_source_dies(clip1: Path) -> None:
    opened: list[int] = []
    status: list[bool] = []
    delays: list[float] = []

    def factory() -> FrameSource:
        opened.append(1)
        if len(opened) == 2:
            raise ConnectionError("camera unreachable")  # the first reopen fails too
        return DiesAfter(clip1, 20) if len(opened) < 3 else VideoSource(str(clip1))

    src = ReconnectingSource(factory, Backoff(initial_s=0.5, factor=2.0), on_status=status.append,
                             sleep=delays.append, on_eof="stop")
    frames = list(src)
    assert len(opened) == 3 and src.reconnects == 2
    assert delays == [0.5, 1.0]
    assert status == [True, False, True]
    assert len(frames) == 20 + 500
    idx = [f.index for f in frames]
    assert idx == sorted(idx) and len(set(idx)) == len(idx)  # indices continue across the gap
    assert np.all(np.diff([f.t for f in frames]) > 0)


def test_reconnect_gives_up_after_max_attempts() -> None:
    def factory() -> FrameSource:
        raise ConnectionError("down")

    delays: list[float] = []
    src = ReconnectingSource(factory, Backoff(initial_s=1, max_s=3), sleep=delays.append, max_attempts=4)
    assert list(src) == []
    assert delays == [1, 2, 3, 3]


def test_looping_file_restarts_without_outage_and_live_eof_reconnects(clip1: Path) -> None:
    status: list[bool] = []
    delays: list[float] = []
    loop = ReconnectingSource(lambda: VideoSource(str(clip1), stride=10), on_status=status.append,
                              sleep=delays.append, on_eof="restart")
    frames = []
    for frame in loop:
        frames.append(frame)
        if len(frames) == 120:  # 50 frames per pass: more than two passes
            loop.stop()
    assert status == [True] and delays == []
    assert np.all(np.diff([f.wall for f in frames]) > 0) and np.all(np.diff([f.t for f in frames]) > 0)
    opened: list[int] = []

    def camera_that_then_vanishes() -> FrameSource:
        opened.append(1)
        if len(opened) > 1:
            raise ConnectionError("no route to camera")
        return VideoSource(str(clip1), stride=10)

    status.clear()
    live = ReconnectingSource(camera_that_then_vanishes, on_status=status.append,
                              sleep=delays.append, on_eof="reconnect", max_attempts=2)
    assert len(list(live)) == 50  # a stream's end is an outage: retried, then given up
    assert delays == [0.5, 1.0] and status == [True, False] and len(opened) == 3
