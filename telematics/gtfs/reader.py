"""Reading a GTFS static feed from a zip archive or a folder of ``.txt`` files.

The I/O edge of `telematics.gtfs`: `ZipOrFolder` opens the archive (checking its CRCs)
and reads each file as strings with pandas; `read_feed` hands it to the pure
`telematics.gtfs.validate.build_feed`. Unreadable archives, files that are not UTF-8 or
not CSV raise `telematics.gtfs.model.FeedError` naming the file.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd

from telematics.gtfs.model import Feed, FeedError
from telematics.gtfs.validate import build_feed, check_header

__all__ = ["ZipOrFolder", "read_feed"]


class ZipOrFolder:
    """The files of a feed, from a zip archive or a directory (a `TableSource`).

    Parameters
    ----------
    path : Path
        A GTFS ``.zip`` (files may sit in one sub-folder) or a directory of ``.txt`` files.

    Raises
    ------
    FeedError
        No such path, not a readable zip archive, or a member with a CRC mismatch.
    """

    def __init__(self, path: Path):
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._names: dict[str, str] = {}
        if path.is_dir():
            self._names = {p.name: p.name for p in path.iterdir() if p.suffix == ".txt"}
            return
        if not path.exists():
            raise FeedError(str(path), "no such file or directory")
        try:
            self._zip = zipfile.ZipFile(path)
            bad = self._zip.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FeedError(path.name, f"not a readable zip archive ({exc})") from exc
        if bad is not None:
            raise FeedError(bad, f"corrupt member in {path.name} (CRC mismatch)")
        for info in self._zip.infolist():
            name = info.filename.rsplit("/", 1)[-1]
            if name.endswith(".txt"):
                self._names.setdefault(name, info.filename)

    def has(self, name: str) -> bool:
        """Whether the feed has the file ``name``."""
        return name in self._names

    def read(self, name: str) -> pd.DataFrame:
        """Read one file as strings (empty cells are ``""``), checking required columns."""
        try:
            if self._zip is not None:
                raw = self._zip.read(self._names[name])
            else:
                raw = (self.path / self._names[name]).read_bytes()
            frame = pd.read_csv(
                io.BytesIO(raw), dtype=str, keep_default_na=False, encoding="utf-8-sig",
                skipinitialspace=True,
            )
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FeedError(name, f"cannot read file ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise FeedError(name, f"not UTF-8 ({exc})") from exc
        except pd.errors.EmptyDataError as exc:
            raise FeedError(name, "empty file (no header)", line=1) from exc
        except pd.errors.ParserError as exc:
            raise FeedError(name, f"malformed CSV ({exc})") from exc
        return check_header(name, frame)


def read_feed(path: str | Path) -> Feed:
    """Read and validate a GTFS feed.

    Parameters
    ----------
    path : str or Path
        A GTFS ``.zip`` archive or a directory of GTFS ``.txt`` files.

    Returns
    -------
    Feed
        Normalised tables (times in seconds since service-day midnight, dates as
        `datetime.date`, coordinates in degrees).

    Raises
    ------
    FeedError
        Unreadable/truncated archive, missing required file or column, unparsable value,
        or a dangling reference (trip → route, stop_time → trip/stop, trip → shape);
        the message names the file, the 1-based line (header = 1) and the field.
    """
    return build_feed(ZipOrFolder(Path(path)))
