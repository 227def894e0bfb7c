"""Camera health checks on real frames (the freeway clips, CDnet highway) and their darkened,
blurred, shifted, rotated and covered copies; the monitor's persistence over whole clips."""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from video.health import CONDITIONS, HealthConfig, HealthMonitor, alert_kind, measure, to_grey
from video.sources import VideoSource

Image = npt.NDArray[np.uint8]
CFG = HealthConfig()


def _clip_frames(path: Path, step: int) -> list[Image]:
    with VideoSource(str(path)) as src:
        return [f.image for f in src if f.index % step == 0]


def _cdnet_frames(archive: Path, step: int) -> list[Image]:
    with tarfile.open(archive) as tar:
        names = sorted(n for n in tar.getnames() if "/input/in" in n)[::step]
        out = []
        for name in names:
            member = tar.extractfile(name)
            assert member is not None
            out.append(cv2.imdecode(np.frombuffer(member.read(), np.uint8), cv2.IMREAD_COLOR))
        return out


def _covered(f: Image) -> Image:
    """A cover close to the lens (out of focus) over most of the view."""
    h, w = f.shape[:2]
    out = f.copy()
    cv2.rectangle(out, (0, 0), (int(w * 0.85), int(h * 0.8)), (70, 75, 72), -1)
    return cv2.GaussianBlur(out, (0, 0), 3)


def _half_covered(f: Image) -> Image:
    out = f.copy()
    cv2.rectangle(out, (0, 0), (f.shape[1] // 2, f.shape[0]), (60, 60, 60), -1)
    return out


def _warp(f: Image, m: npt.NDArray[np.float64]) -> Image:
    return cv2.warpAffine(f, m, (f.shape[1], f.shape[0]), borderMode=cv2.BORDER_REFLECT)


VARIANTS: dict[str, tuple[Callable[[Image], Image], set[str]]] = {
    "normal": (lambda f: f, set()),
    "darkened": (lambda f: (f * 0.12).astype(np.uint8), {"too_dark", "view_blocked"}),  # at once: a cap
    "dimmed by half": (lambda f: (f * 0.5).astype(np.uint8), set()),  # a cloud
    "blurred": (lambda f: cv2.GaussianBlur(f, (0, 0), 1.2), {"out_of_focus"}),
    "shifted 10 px": (lambda f: _warp(f, np.array([[1.0, 0, 10], [0, 1, 6]])), {"moved"}),
    "rotated 4 deg": (lambda f: _warp(f, cv2.getRotationMatrix2D((f.shape[1] / 2, f.shape[0] / 2), 4, 1.0)), {"moved"}),
    "covered": (_covered, {"view_blocked"}),
    "half covered": (_half_covered, {"view_blocked"}),
    "jpeg quality 30": (lambda f: cv2.imdecode(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 30])[1], 1), set()),
}


@pytest.fixture(scope="module")
def scenes(clip1: Path, clip2: Path) -> dict[str, list[Image]]:
    """The two freeway clips (or their rendered stand-ins) and, when shared, CDnet's highway."""
    from tests.conftest import shared_data_path

    out = {"haar_video1": _clip_frames(clip1, 10), "haar_video2": _clip_frames(clip2, 10)}
    cdnet = shared_data_path() / "video" / "cdnet_highway.tar.gz"
    if cdnet.is_file():
        out["cdnet_highway"] = _cdnet_frames(cdnet, 20)
    return out


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_checks_on_real_frames_and_their_variants(scenes: dict[str, list[Image]], variant: str) -> None:
    make, expected = VARIANTS[variant]
    for name, frames in scenes.items():
        greys = [to_grey(f, CFG.width) for f in frames[:45:5]]
        reference = np.median(np.stack(greys), axis=0).astype(np.float32)  # what the monitor learns
        baseline = float(np.median([measure(g, None, None, CFG).sharpness for g in greys]))
        flags = [measure(to_grey(make(f), CFG.width), reference, baseline, CFG).flags for f in frames[9::2]]
        assert len(flags) >= 20
        assert all(f == expected for f in flags), (name, variant, [sorted(f) for f in flags if f != expected][:5])


def _run(monitor: HealthMonitor, frames: list[Image], t0: float, dt: float,
         make: Callable[[Image], Image] = lambda f: f) -> list[frozenset[str]]:
    out = []
    for i, f in enumerate(frames):
        report = monitor.update(make(f), t0 + i * dt)
        if report is not None:
            out.append(report.conditions)
    return out


def test_monitor_raises_nothing_over_whole_real_clips(clip1: Path, clip2: Path) -> None:
    for clip in (clip1, clip2):
        monitor = HealthMonitor(HealthConfig(persist=2), interval_s=0.2)  # a check every 5th frame, quick to alarm
        seen = _run(monitor, _clip_frames(clip, 5), 0.0, 0.2)
        assert len(seen) >= 100 and not any(seen), clip


def test_conditions_persist_before_raised_and_clear_after(clip2: Path) -> None:
    frames = _clip_frames(clip2, 5)  # one check per frame: every 0.2 s
    monitor = HealthMonitor(HealthConfig(persist=3), interval_s=0.2)
    assert not any(_run(monitor, frames[:40], 0.0, 0.2))
    covered = _run(monitor, frames[40:80], 8.0, 0.2, _covered)
    assert covered[:2] == [frozenset(), frozenset()] and all(c == {"view_blocked"} for c in covered[2:])
    back = _run(monitor, frames[80:], 16.0, 0.2)
    assert back[:2] == [{"view_blocked"}, {"view_blocked"}] and not any(back[2:])
    shifted = _run(monitor, frames[:40], 26.0, 0.2, lambda f: _warp(f, np.array([[1.0, 0, 12], [0, 1, 0]])))
    assert all(c == {"moved"} for c in shifted[2:])  # stays moved: the reference does not follow a move
    assert monitor.last is not None and monitor.last.payload()["conditions"] == ["moved"]
    assert monitor.last.payload()["shift_px"] == pytest.approx(12, abs=1)


def test_dusk_is_too_dark_not_blocked(clip2: Path) -> None:
    frames = _clip_frames(clip2, 5)
    monitor = HealthMonitor(HealthConfig(persist=3), interval_s=0.2)
    assert not any(_run(monitor, frames[:20], 0.0, 0.2))
    seen: list[frozenset[str]] = []
    for i, f in enumerate(frames * 2):  # the light fades over 60 s of stream time, a check every 0.2 s
        gain = max(1.0 - i / 200, 0.08)
        report = monitor.update((f * gain).astype(np.uint8), 4.0 + i * 0.2)
        if report is not None:
            seen.append(report.conditions)
    assert seen[-1] == {"too_dark"} and all(c <= {"too_dark"} for c in seen)


def test_alert_kinds() -> None:
    assert [alert_kind(c) for c in CONDITIONS] == ["camera_view_blocked", "camera_moved", "camera_out_of_focus",
                                                   "camera_too_dark"]
