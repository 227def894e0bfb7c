"""Reading the segment-graph format (``segments.csv``, ``adjacency.csv``, ``speeds.csv``).

Format (``../shared/data/README.md``): ``segments.csv`` = ``segment_id,lat,lon``;
``adjacency.csv`` = ``from_segment,to_segment,weight`` with weight in (0, 1];
``speeds.csv`` = ``timestamp,segment_id,speed_kmh`` (ISO 8601 with offset or ``Z``; also
accepted: ISO 8601 local time without offset, Unix epoch seconds). Files are UTF-8 (a BOM
and CRLF line ends are fine), rows in any order, segment ids are kept as text (``007`` is not
``7``). Every problem is reported as ``ValueError("<file>: line <n>: field <name>: ...")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from its.csvtext import read_text_csv
from traffic.congestion import symmetric_adjacency

__all__ = ["MAX_SPEED_KMH", "SegmentGraph", "SpeedTable", "parse_timestamps", "read_segment_graph", "read_speeds"]

#: Highest plausible road speed (km/h); a faster reading is a data error.
MAX_SPEED_KMH = 300.0


@dataclass(frozen=True)
class SegmentGraph:
    """Segments (ids, positions) and their symmetric similarity matrix."""

    segment_id: npt.NDArray[np.str_]
    lat: npt.NDArray[np.float64]
    lon: npt.NDArray[np.float64]
    adjacency: sp.csr_matrix

    @property
    def n(self) -> int:
        return len(self.segment_id)


@dataclass(frozen=True)
class SpeedTable:
    """Speeds as a dense matrix ``(n_times, n_segments)`` (km/h, NaN where missing).

    Attributes
    ----------
    time_s : UTC epoch seconds of each row, increasing.
    utc_offset_s : UTC offset (s) of the first timestamp (the data's local time).
    speed_kmh : speeds (km/h).
    """

    time_s: npt.NDArray[np.float64]
    utc_offset_s: int
    speed_kmh: npt.NDArray[np.float64]

    def local_day(self) -> npt.NDArray[np.int64]:
        """Local calendar day number of each row (days since epoch)."""
        return ((self.time_s + self.utc_offset_s) // 86_400).astype(np.int64)

    def rows(self, mask: npt.NDArray[np.bool_]) -> SpeedTable:
        return SpeedTable(self.time_s[mask], self.utc_offset_s, self.speed_kmh[mask])


def _read(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The CSV as stripped text columns, checked for ``columns`` (`its.csvtext.read_text_csv`)."""
    return read_text_csv(path, columns)


def _numbers(path: Path, df: pd.DataFrame, column: str) -> npt.NDArray[np.float64]:
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.nonzero(~np.isfinite(values))[0]
    if len(bad):
        i = int(bad[0])
        text = df[column].iloc[i]
        what = "empty" if not text else f"not a number: {text!r}"
        raise ValueError(f"{path}: line {i + 2}: field {column}: {what}")
    return values


def _in_range(path: Path, values: npt.NDArray[np.float64], column: str, low: float, high: float,
              unit: str = "") -> None:
    """Raise naming the first line whose ``values`` fall outside ``[low, high]``."""
    bad = np.nonzero((values < low) | (values > high))[0]
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: line {i + 2}: field {column}: {values[i]:g}{unit} not in [{low:g}, {high:g}]{unit}")


def read_segment_graph(segments_csv: str | Path, adjacency_csv: str | Path) -> SegmentGraph:
    """Read segments and adjacency; the adjacency is symmetrised (max of both directions)."""
    sp_path, adj_path = Path(segments_csv), Path(adjacency_csv)
    seg = _read(sp_path, ("segment_id", "lat", "lon"))
    ids = seg["segment_id"].to_numpy().astype(str)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        i = int(np.nonzero(dup)[0][0])
        raise ValueError(f"{sp_path}: line {i + 2}: field segment_id: duplicate {ids[i]!r}")
    if seg.empty:
        raise ValueError(f"{sp_path}: no segments (only a header)")
    empty = np.nonzero(ids == "")[0]
    if len(empty):
        raise ValueError(f"{sp_path}: line {int(empty[0]) + 2}: field segment_id: empty")
    lat, lon = _numbers(sp_path, seg, "lat"), _numbers(sp_path, seg, "lon")
    _in_range(sp_path, lat, "lat", -90.0, 90.0, " deg")
    _in_range(sp_path, lon, "lon", -180.0, 180.0, " deg")
    adj = _read(adj_path, ("from_segment", "to_segment", "weight"))
    index = pd.Index(ids)
    rows = []
    for col in ("from_segment", "to_segment"):
        pos = index.get_indexer(pd.Index(adj[col].astype(str)))
        if (pos < 0).any():
            i = int(np.nonzero(pos < 0)[0][0])
            raise ValueError(f"{adj_path}: line {i + 2}: field {col}: unknown segment {adj[col].iloc[i]!r}")
        rows.append(pos)
    w = _numbers(adj_path, adj, "weight")
    bad = np.nonzero((w <= 0) | (w > 1))[0]
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{adj_path}: line {i + 2}: field weight: {w[i]} not in (0, 1]")
    return SegmentGraph(ids, lat, lon, symmetric_adjacency(rows[0], rows[1], w, len(ids)))


def parse_timestamps(stamps: npt.NDArray[np.str_]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], int]:
    """Parse timestamp texts into UTC epoch seconds (pure; no file access).

    Accepted: ISO 8601 with a UTC offset (``-0800``, ``+05:30``) or ``Z``; ISO 8601 without
    one (read as the data's local time, offset 0); Unix epoch seconds (integer or decimal,
    UTC). Offsets may differ between rows (daylight saving), but rows with and without an
    offset cannot be mixed.

    Parameters
    ----------
    stamps : texts, one per row.

    Returns
    -------
    epoch_s : UTC epoch seconds of each row (NaN where the text is not a timestamp).
    bad : positions of the rows that are not timestamps (NaN epoch, or offset-less among rows with offsets).
    utc_offset_s : UTC offset (s) of the first row (0 for offset-less and epoch rows).
    """
    uniq, inverse = np.unique(np.asarray(stamps, dtype=str), return_inverse=True)
    text = pd.Series(uniq, dtype=object)
    epoch_like = text.str.fullmatch(r"\d{9,10}(\.\d*)?").to_numpy(dtype=bool)
    epoch = np.full(len(uniq), np.nan)
    numbers = pd.to_numeric(text[epoch_like], errors="coerce").to_numpy(dtype=np.float64)
    # Unix seconds between 2000-01-01 and 2100-01-01: anything else is not a timestamp
    epoch[epoch_like] = np.where((numbers >= 946_684_800) & (numbers < 4_102_444_800), numbers, np.nan)
    iso = ~epoch_like
    has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", case=False, regex=True).to_numpy(dtype=bool)
    if iso.any():
        parsed = pd.to_datetime(text[iso], format="ISO8601", utc=True, errors="coerce")
        epoch[iso] = ((parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype=np.float64)
    bad_u = ~np.isfinite(epoch)
    aware, naive = iso & has_offset, iso & ~has_offset
    if aware.any() and naive.any():  # a minority kind is the error
        bad_u |= naive if naive.sum() <= aware.sum() else aware
    first = int(inverse[0])
    utc_offset_s = 0
    if aware[first] and not bad_u[first]:
        offset = pd.Timestamp(str(uniq[first])).utcoffset()
        utc_offset_s = int(offset.total_seconds()) if offset is not None else 0
    bad = np.nonzero(bad_u[inverse])[0].astype(np.int64)
    return epoch[inverse], bad, utc_offset_s


def read_speeds(speeds_csv: str | Path, segment_ids: npt.NDArray[np.str_]) -> SpeedTable:
    """Read ``timestamp,segment_id,speed_kmh`` into a dense matrix over ``segment_ids``.

    Rows may come in any order; a (timestamp, segment) given twice must carry the same
    speed. Speeds must be numbers in [0, :data:`MAX_SPEED_KMH`] km/h: a missing reading is a
    missing row, not an empty field. Timestamps: see :func:`parse_timestamps`.
    """
    path = Path(speeds_csv)
    df = _read(path, ("timestamp", "segment_id", "speed_kmh"))
    if df.empty:
        raise ValueError(f"{path}: no rows (only a header)")
    try:
        speed = _numbers(path, df, "speed_kmh")
    except ValueError as exc:
        if "empty" in str(exc) or "'nan'" in str(exc).lower() or "'null'" in str(exc).lower():
            raise ValueError(f"{exc} (leave out the row of a missing reading)") from None
        raise
    _in_range(path, speed, "speed_kmh", 0.0, MAX_SPEED_KMH, " km/h")
    seg = pd.Index(segment_ids).get_indexer(pd.Index(df["segment_id"].astype(str)))
    if (seg < 0).any():
        i = int(np.nonzero(seg < 0)[0][0])
        raise ValueError(f"{path}: line {i + 2}: field segment_id: unknown segment {df['segment_id'].iloc[i]!r} "
                         "(not in segments.csv)")
    epoch, bad, utc_offset_s = parse_timestamps(df["timestamp"].to_numpy().astype(str))
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: line {i + 2}: field timestamp: not ISO 8601 with a UTC offset, ISO 8601 "
                         f"local time or Unix seconds (or mixes rows with and without an offset): "
                         f"{df['timestamp'].iloc[i]!r}")
    times, row = np.unique(epoch, return_inverse=True)
    matrix = np.full((len(times), len(segment_ids)), np.nan)
    matrix[row, seg] = speed
    clash = np.nonzero(matrix[row, seg] != speed)[0]
    if len(clash):
        i = int(clash[0])
        same = np.nonzero((row == row[i]) & (seg == seg[i]))[0]
        raise ValueError(f"{path}: line {i + 2}: field speed_kmh: {speed[i]:g} km/h, but line {int(same[-1]) + 2} "
                         f"gives {speed[same[-1]]:g} km/h for the same timestamp and segment")
    return SpeedTable(np.asarray(times, dtype=np.float64), utc_offset_s, matrix)
