"""Reading the segment-graph format (``segments.csv``, ``adjacency.csv``, ``speeds.csv``).

Format (``../shared/data/README.md``): ``segments.csv`` = ``segment_id,lat,lon``;
``adjacency.csv`` = ``from_segment,to_segment,weight`` with weight in (0, 1];
``speeds.csv`` = ``timestamp,segment_id,speed_kmh`` (ISO 8601 with offset). Every problem
is reported as ``ValueError("<file>: line <n>: field <name>: ...")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp

from traffic.congestion import symmetric_adjacency

__all__ = ["SegmentGraph", "SpeedTable", "read_segment_graph", "read_speeds"]


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
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a readable CSV: {exc}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)}")
    return df


def _numbers(path: Path, df: pd.DataFrame, column: str) -> npt.NDArray[np.float64]:
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.nonzero(~np.isfinite(values))[0]
    if len(bad):
        i = int(bad[0])
        raise ValueError(f"{path}: line {i + 2}: field {column}: not a number: {df[column].iloc[i]!r}")
    return values


def read_segment_graph(segments_csv: str | Path, adjacency_csv: str | Path) -> SegmentGraph:
    """Read segments and adjacency; the adjacency is symmetrised (max of both directions)."""
    sp_path, adj_path = Path(segments_csv), Path(adjacency_csv)
    seg = _read(sp_path, ("segment_id", "lat", "lon"))
    ids = seg["segment_id"].to_numpy().astype(str)
    dup = pd.Index(ids).duplicated()
    if dup.any():
        i = int(np.nonzero(dup)[0][0])
        raise ValueError(f"{sp_path}: line {i + 2}: field segment_id: duplicate {ids[i]!r}")
    lat, lon = _numbers(sp_path, seg, "lat"), _numbers(sp_path, seg, "lon")
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


def read_speeds(speeds_csv: str | Path, segment_ids: npt.NDArray[np.str_]) -> SpeedTable:
    """Read ``timestamp,segment_id,speed_kmh`` into a dense matrix over ``segment_ids``."""
    path = Path(speeds_csv)
    df = _read(path, ("timestamp", "segment_id", "speed_kmh"))
    if df.empty:
        raise ValueError(f"{path}: no rows")
    speed = _numbers(path, df, "speed_kmh")
    neg = np.nonzero(speed < 0)[0]
    if len(neg):
        raise ValueError(f"{path}: line {int(neg[0]) + 2}: field speed_kmh: negative speed {speed[neg[0]]}")
    seg = pd.Index(segment_ids).get_indexer(pd.Index(df["segment_id"].astype(str)))
    if (seg < 0).any():
        i = int(np.nonzero(seg < 0)[0][0])
        raise ValueError(f"{path}: line {i + 2}: field segment_id: unknown segment {df['segment_id'].iloc[i]!r}")
    stamps, inverse = np.unique(df["timestamp"].to_numpy().astype(str), return_inverse=True)
    parsed = pd.to_datetime(pd.Series(stamps), format="ISO8601", utc=True, errors="coerce")
    if parsed.isna().any():
        first = int(np.nonzero(np.isin(inverse, np.nonzero(parsed.isna().to_numpy())[0]))[0][0])
        raise ValueError(f"{path}: line {first + 2}: field timestamp: not ISO 8601: {df['timestamp'].iloc[first]!r}")
    epoch = ((parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()).to_numpy(dtype=np.float64)
    first_stamp = datetime.fromisoformat(str(df["timestamp"].iloc[0]))
    offset = first_stamp.utcoffset()
    utc_offset_s = int(offset.total_seconds()) if offset is not None else 0
    times, row = np.unique(epoch[inverse], return_inverse=True)
    matrix = np.full((len(times), len(segment_ids)), np.nan)
    matrix[row, seg] = speed
    return SpeedTable(np.asarray(times, dtype=np.float64), utc_offset_s, matrix)
