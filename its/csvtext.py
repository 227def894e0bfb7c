"""A CSV file from another system read as text columns, with errors that name file and line.

One reader for the evaluation inputs a new city hands over (segment graphs and speeds,
people counts and head positions): UTF-8 with or without a byte-order mark, CRLF line ends,
spaces around fields, extra columns ignored; every value a string, stripped, for the domain's
own parsing to check field by field.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["read_text_csv"]


def read_text_csv(path: str | Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The CSV at ``path`` as stripped strings, checked for ``columns``.

    Parameters
    ----------
    path : str or Path
        The file.
    columns : tuple of str
        Columns it must have (others are kept as they are).

    Returns
    -------
    DataFrame
        One row per data line, every column text (``""`` when empty), ``columns`` stripped.

    Raises
    ------
    ValueError
        A missing file, text that is not UTF-8 (with its line), an empty or unreadable file, a
        missing column; each message starts with the file's name.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    if not raw.strip():
        raise ValueError(f"{path}: empty file (expected a header line {','.join(columns)})")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{path}: not a readable CSV: {exc}") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: line 1: missing column(s) {', '.join(missing)} "
                         f"(expected {','.join(columns)}, found {','.join(map(str, table.columns))})")
    for c in columns:
        table[c] = table[c].str.strip()
    return table.reset_index(drop=True)
