"""Annotated people-counting frames: loading, calibration and held-out scoring.

Frames come from a ``.tar``/``.tar.gz`` archive or a folder of images; a frame's number is
the last run of digits in its file name (``seq_000123.jpg`` is frame 123), or its 1-based
position in name order when the names carry no numbers. ``counts.csv`` (``frame,count``)
says which frames are annotated; the optional ``heads.csv`` (``frame,x,y``, frame pixels)
gives every head. A frame range (``601-800``) further restricts the frames used.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pandas as pd

from its.csvtext import read_text_csv
from video.people import PeopleCounter, PeopleModel, fit_people_model
from video.people_features import CellGrid, PeopleConfig, to_grey
from video.sources import IMAGE_SUFFIXES, SourceError, open_tar

__all__ = ["MIN_FRAMES", "AnnotatedFrames", "calibrate", "cross_validate", "evaluate", "load_annotated", "parse_range", "read_counts",
           "read_heads", "read_roi", "single_thread"]

#: Fewest annotated frames a people model is fitted on (as :func:`video.people.fit_people_model`).
MIN_FRAMES = 10
_DIGITS = re.compile(r"(\d+)(?!.*\d)")


def parse_range(text: str | None) -> tuple[int, int] | None:
    """``"601-800"`` -> ``(601, 800)`` (inclusive frame numbers); ``None`` stays ``None``."""
    if text is None or not text.strip():
        return None
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if not m or int(m.group(1)) > int(m.group(2)):
        raise ValueError(f"frame range {text!r}: expected FIRST-LAST, e.g. 601-800")
    return int(m.group(1)), int(m.group(2))


def _image_files(source: Path) -> dict[str, bytes]:
    if source.is_dir():
        return {p.name: p.read_bytes() for p in sorted(source.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if not source.is_file():
        raise SourceError(f"frames not found: {source}")
    out: dict[str, bytes] = {}
    with open_tar(source) as tar:
        for member in tar:
            if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                fh = tar.extractfile(member)
                if fh is not None:
                    out[member.name] = fh.read()
    return out


def _numbered(files: dict[str, bytes]) -> dict[int, bytes]:
    names = sorted(files)
    found = [_DIGITS.search(Path(n).stem) for n in names]
    numbers = [int(m.group(1)) for m in found if m]
    if len(numbers) == len(names) and len(set(numbers)) == len(numbers):
        return {num: files[n] for num, n in zip(numbers, names, strict=True)}
    return {i + 1: files[n] for i, n in enumerate(names)}


@dataclass
class AnnotatedFrames:
    """Annotated frames in time order.

    Attributes
    ----------
    source : Path
        Archive or folder the frames came from.
    numbers : ndarray of int
        Frame numbers.
    jpegs : list of bytes
        Encoded images.
    counts : ndarray of float
        People per frame.
    heads : list of ndarray (m, 2), optional
        Head positions per frame, frame pixels.
    """

    source: Path
    numbers: npt.NDArray[np.int64]
    jpegs: list[bytes]
    counts: npt.NDArray[np.float64]
    heads: list[npt.NDArray[np.float64]] | None = None

    def __len__(self) -> int:
        return len(self.numbers)

    def subset(self, index: npt.NDArray[np.int64]) -> AnnotatedFrames:
        """The frames at positions ``index`` (kept in time order)."""
        idx = np.sort(np.asarray(index, dtype=np.int64))
        heads = None if self.heads is None else [self.heads[i] for i in idx]
        return AnnotatedFrames(self.source, self.numbers[idx], [self.jpegs[i] for i in idx], self.counts[idx], heads)

    def decode(self, index: int) -> npt.NDArray[np.uint8]:
        image = cv2.imdecode(np.frombuffer(self.jpegs[index], np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise SourceError(f"{self.source}: cannot decode frame {self.numbers[index]}")
        return np.asarray(image, dtype=np.uint8)

    def frame(self, index: int, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
        """:meth:`decode`, refusing a frame that is not ``size`` ``(width, height)`` pixels."""
        image = self.decode(index)
        if image.shape[1::-1] != tuple(size):
            raise SourceError(f"{self.source}: frame {self.numbers[index]} is {image.shape[1]}x{image.shape[0]}, "
                              f"expected {size[0]}x{size[1]} (all frames of a camera must have one size)")
        return image


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The CSV as stripped text columns, checked for ``columns`` (`its.csvtext.read_text_csv`)."""
    return read_text_csv(path, columns)


def _column(path: Path, table: pd.DataFrame, column: str, *, whole: bool = False,
            low: float | None = None) -> npt.NDArray[np.float64]:
    """Numbers of ``column``; the first empty, non-numeric, fractional (``whole``) or too low value is an error."""
    text = table[column].astype(str).str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if whole:
        bad |= np.isfinite(values) & (values != np.round(values))
    if low is not None:
        bad |= np.isfinite(values) & (values < low)
    if bad.any():
        i = int(np.nonzero(bad)[0][0])
        kind = "a whole number" if whole else "a number"
        limit = f" >= {low:g}" if low is not None else ""
        raise ValueError(f"{path}: line {i + 2}: field {column}: expected {kind}{limit}, got {text.iloc[i]!r}")
    return values


def read_counts(counts_csv: Path, frame_range: tuple[int, int] | None = None) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """``frame,count`` rows (within ``frame_range``) in frame order: frame numbers and people counts.

    Raises
    ------
    ValueError
        Naming the file, line and field: a frame number that is not a whole number >= 0, a
        count that is not a number >= 0, a frame listed twice.
    """
    table = _read_csv(counts_csv, ("frame", "count"))
    frame = _column(counts_csv, table, "frame", whole=True, low=0).astype(np.int64)
    count = _column(counts_csv, table, "count", low=0)
    seen: dict[int, int] = {}
    for i, f in enumerate(frame.tolist()):
        if f in seen:
            raise ValueError(f"{counts_csv}: line {i + 2}: field frame: frame {f} already counted on line {seen[f] + 2}")
        seen[f] = i
    keep = np.ones(len(frame), bool) if frame_range is None else (frame >= frame_range[0]) & (frame <= frame_range[1])
    order = np.argsort(frame[keep], kind="stable")
    return frame[keep][order], count[keep][order]


def read_heads(heads_csv: Path, numbers: npt.NDArray[np.int64], counts: npt.NDArray[np.float64],
               frame_size: tuple[int, int]) -> list[npt.NDArray[np.float64]]:
    """Head positions ``(m, 2)`` (frame pixels) of each frame of ``numbers``.

    Parameters
    ----------
    heads_csv : ``frame,x,y`` file.
    numbers, counts : the annotated frames and their people counts.
    frame_size : ``(width, height)`` of the frames, pixels.

    Raises
    ------
    ValueError
        Naming the file, line and field: no head at all, a value that is not a number, a head
        outside the frame (annotated at another resolution), or a frame counting 2 or more
        people without any head (heads must cover every annotated frame; ``--no-heads``
        fits from the counts alone).
    """
    table = _read_csv(heads_csv, ("frame", "x", "y"))
    if table.empty:
        raise ValueError(f"{heads_csv}: no head positions (only a header); give --no-heads to fit from the counts alone")
    frame = _column(heads_csv, table, "frame", whole=True, low=0).astype(np.int64)
    xy = np.column_stack([_column(heads_csv, table, "x"), _column(heads_csv, table, "y")])
    w, h = frame_size
    wanted = np.isin(frame, numbers)
    for axis, name, limit in ((0, "x", w), (1, "y", h)):
        out = np.nonzero(wanted & ((xy[:, axis] < 0) | (xy[:, axis] > limit)))[0]
        if len(out):
            i = int(out[0])
            raise ValueError(f"{heads_csv}: line {i + 2}: field {name}: {xy[i, axis]:g} lies outside the {w}x{h} frames "
                             f"(head positions are in pixels of these frames)")
    groups: dict[int, list[int]] = {}
    for i in np.nonzero(wanted)[0].tolist():
        groups.setdefault(int(frame[i]), []).append(i)
    heads = [xy[groups.get(int(n), [])].reshape(-1, 2) for n in numbers]
    bare = [(int(n), c) for n, c, hd in zip(numbers, counts, heads, strict=True) if c >= 2 and len(hd) == 0]
    if bare:
        n, c = bare[0]
        raise ValueError(f"{heads_csv}: no head for frame {n} (count {c:g}) nor for {len(bare) - 1} other counted "
                         "frame(s): heads must cover every annotated frame; give --no-heads to fit from the counts alone")
    return heads


def load_annotated(frames: Path, counts_csv: Path, heads_csv: Path | None = None,
                   frame_range: tuple[int, int] | None = None) -> AnnotatedFrames:
    """Frames listed in ``counts_csv`` (within ``frame_range``), with their counts and heads.

    Raises
    ------
    ValueError
        A counts or heads file that cannot be used (naming file, line and field, see
        :func:`read_counts`, :func:`read_heads`), or a counted frame without an image.
    SourceError
        The frames cannot be read.
    """
    numbers, count = read_counts(Path(counts_csv), frame_range)
    images = _numbered(_image_files(Path(frames)))
    if not images:
        raise SourceError(f"{frames}: no images ({', '.join(IMAGE_SUFFIXES)})")
    missing = sorted(set(numbers.tolist()) - set(images))
    if missing:
        raise ValueError(f"{frames}: no image for frame(s) {missing[:5]}{' ...' if len(missing) > 5 else ''} of {counts_csv}")
    if not len(numbers):
        raise ValueError(f"{counts_csv}: no annotated frame{' in range ' + str(frame_range) if frame_range else ''}")
    out = AnnotatedFrames(Path(frames), numbers, [images[int(n)] for n in numbers], count, None)
    if heads_csv is not None:
        first = out.decode(0)
        out.heads = read_heads(Path(heads_csv), numbers, count, (first.shape[1], first.shape[0]))
    return out


def read_roi(path: Path | None) -> npt.NDArray[np.uint8] | None:
    """A region-of-interest image (non-zero = counted) as a grey mask, or ``None``."""
    if path is None:
        return None
    if not Path(path).is_file():
        raise ValueError(f"ROI image not found: {path}")
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ValueError(f"cannot read ROI image {path}")
    if not mask.any():
        raise ValueError(f"ROI image {path}: no counted (non-zero) pixel")
    return np.asarray(mask, dtype=np.uint8)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run OpenCV on one thread inside the block (throughput per core)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def calibrate(train: AnnotatedFrames, roi: npt.NDArray[np.uint8] | None = None, config: PeopleConfig | None = None,
              use_heads: bool = True) -> PeopleModel:
    """Fit a camera's model on annotated frames (cells model when heads are known)."""
    config = config or PeopleConfig()
    if len(train) < MIN_FRAMES:
        raise ValueError(f"{train.source}: {len(train)} annotated frame(s) to fit on; a people model needs at least {MIN_FRAMES}")
    first = train.decode(0)
    grid = CellGrid.for_frame((first.shape[1], first.shape[0]), config)
    if roi is not None and roi.shape[1::-1] != grid.frame_size:
        raise ValueError(f"ROI image is {roi.shape[1]}x{roi.shape[0]}, frames are {grid.frame_size[0]}x{grid.frame_size[1]}")
    greys = np.stack([to_grey(train.frame(i, grid.frame_size), grid) for i in range(len(train))])
    model = fit_people_model(greys, grid, train.counts.tolist(), train.heads if use_heads else None, roi, config)
    model.meta.update({"source": train.source.name, "first_frame": int(train.numbers[0]), "last_frame": int(train.numbers[-1])})
    return model


def evaluate(model: PeopleModel, test: AnnotatedFrames) -> dict[str, Any]:
    """Count the test frames in order and score against their counts.

    Returns
    -------
    dict
        ``mae``, ``rmse``, ``bias`` (people), ``mae_pct`` (% of ``mean_count``),
        ``mean_count``, ``frames``, ``fps`` (JPEG decode + counting per second of one
        core's CPU time: OpenCV and LightGBM run on one thread, so a busy machine does not
        lower it), ``fps_wall`` (the same per second of elapsed time), ``first_frame``,
        ``last_frame``, ``model`` (kind).
    """
    counter = PeopleCounter(model)
    pred = np.zeros(len(test))
    with single_thread():
        began, cpu = time.perf_counter(), time.process_time()
        for i in range(len(test)):
            pred[i] = counter.update(test.frame(i, counter.model.grid.frame_size)).count
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    err = pred - test.counts
    mean = float(test.counts.mean())
    return {
        "mae": round(float(np.abs(err).mean()), 3),
        "rmse": round(float(np.sqrt((err**2).mean())), 3),
        "bias": round(float(err.mean()), 3),
        "mae_pct": round(100.0 * float(np.abs(err).mean()) / max(mean, 1e-9), 2),
        "mean_count": round(mean, 3),
        "frames": len(test),
        "fps": round(len(test) / max(cpu, 1e-9), 1),
        "fps_wall": round(len(test) / max(elapsed, 1e-9), 1),
        "first_frame": int(test.numbers[0]),
        "last_frame": int(test.numbers[-1]),
        "model": model.kind,
    }


def cross_validate(train: AnnotatedFrames, roi: npt.NDArray[np.uint8] | None = None, config: PeopleConfig | None = None,
                   folds: int = 5, use_heads: bool = True) -> dict[str, Any]:
    """Blocked ``folds``-fold cross-validation: each block of consecutive frames is counted
    by a model calibrated (background included) on the other blocks only.

    Returns
    -------
    dict
        ``cv_mae``, ``cv_rmse``, ``cv_bias`` (people), ``cv_mae_pct``, ``folds`` and the
        bias of every fold (people).
    """
    if folds < 2 or len(train) < 2 * folds:
        raise ValueError(f"cross-validation needs folds >= 2 and at least 2 frames per fold ({len(train)} frames)")
    pred = np.zeros(len(train))
    blocks = np.array_split(np.arange(len(train)), folds)
    for block in blocks:
        model = calibrate(train.subset(np.setdiff1d(np.arange(len(train)), block)), roi, config, use_heads)
        counter = PeopleCounter(model)
        pred[block] = [counter.update(train.frame(int(i), model.grid.frame_size)).count for i in block]
    err = pred - train.counts
    return {
        "cv_mae": round(float(np.abs(err).mean()), 3),
        "cv_rmse": round(float(np.sqrt((err**2).mean())), 3),
        "cv_bias": round(float(err.mean()), 3),
        "cv_mae_pct": round(100.0 * float(np.abs(err).mean()) / max(float(train.counts.mean()), 1e-9), 2),
        "folds": folds,
        "fold_bias": [round(float(err[b].mean()), 3) for b in blocks],
    }
