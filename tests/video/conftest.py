"""Fixtures of the video tests: the real clips and archives of the shared data, or, without
``../shared``, rendered street scenes of the same size, length and frame rate
(:mod:`video.synthetic`) in place of the freeway clips."""

from __future__ import annotations

from pathlib import Path

import pytest

from video.synthetic import StreetScene, write_clip

#: Stand-ins for the shared clips: (seed, frames, fps, vehicles per lane and minute).
STAND_INS = {"haar_video1.avi": (1, 500, 15.0, 12.0), "haar_video2.avi": (2, 750, 25.0, 12.0)}


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared video data missing: {path}")
    return path


def stand_in(name: str, folder: Path) -> Path:
    """The rendered clip standing in for the shared clip ``name`` (written once into ``folder``)."""
    seed, frames, fps, rate = STAND_INS[name]
    path = folder / f"synthetic_{name}"
    if not path.is_file():
        write_clip(path, StreetScene(seed=seed, period_s=frames / fps, fps=fps, vehicles_per_min=rate))
    return path


@pytest.fixture(scope="session")
def video_samples(sample_data: Path) -> Path:
    """Folder of the rendered stand-in clips."""
    folder = sample_data / "video"
    folder.mkdir(exist_ok=True)
    return folder


def _clip(name: str, video_samples: Path) -> Path:
    from tests.conftest import shared_data_path

    real = shared_data_path() / "video" / name
    return real if real.is_file() else stand_in(name, video_samples)


@pytest.fixture(scope="session")
def clip1(video_samples: Path) -> Path:
    """The real freeway clip haar_video1.avi (500 frames, 15 fps), else its rendered stand-in."""
    return _clip("haar_video1.avi", video_samples)


@pytest.fixture(scope="session")
def clip2(video_samples: Path) -> Path:
    """The real freeway clip haar_video2.avi (750 frames, 25 fps), else its rendered stand-in."""
    return _clip("haar_video2.avi", video_samples)


@pytest.fixture(scope="session")
def cdnet_archive(shared_data: Path) -> Path:
    return _need(shared_data / "video" / "cdnet_highway.tar.gz")


@pytest.fixture(scope="session")
def mall(sample_data: Path) -> Path:
    """The Mall people-counting frames (frames.tar, counts.csv, heads.csv, roi.png), else a
    rendered crowd with its counts and heads in the same layout (tests.standins)."""
    from tests.conftest import shared_data_path
    from tests.standins import mall_standin

    folder = shared_data_path() / "video" / "mall"
    if all((folder / n).is_file() for n in ("frames.tar", "counts.csv", "heads.csv", "roi.png")):
        return folder
    return mall_standin(sample_data)


@pytest.fixture(scope="session")
def real_mall(shared_data: Path) -> Path:
    """The real Mall frames only (evaluations; skips without them)."""
    folder = shared_data / "video" / "mall"
    for name in ("frames.tar", "counts.csv", "heads.csv", "roi.png"):
        _need(folder / name)
    return folder
