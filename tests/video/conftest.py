"""Fixtures of the video tests: the real clips and the CDnet archive of the shared data."""

from __future__ import annotations

from pathlib import Path

import pytest


def _need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"shared video data missing: {path}")
    return path


@pytest.fixture(scope="session")
def clip1(shared_data: Path) -> Path:
    return _need(shared_data / "video" / "haar_video1.avi")


@pytest.fixture(scope="session")
def clip2(shared_data: Path) -> Path:
    return _need(shared_data / "video" / "haar_video2.avi")


@pytest.fixture(scope="session")
def cdnet_archive(shared_data: Path) -> Path:
    return _need(shared_data / "video" / "cdnet_highway.tar.gz")
