"""CSV text for feature tables, fast and deterministic, and the file writer of a package.

Formatting floats is the generator's bottleneck (millions of cells; `%`-formatting manages
about 2 M cells/s). Feature values are rounded to five significant digits of their column's
largest magnitude (at most `MAX_DECIMALS` decimals: jitter about 0.02 keeps 0.012345, a formant
of 2600 Hz keeps 2612.3) and looked up in a table of pre-formatted numbers per decimal count,
several times faster; NaN becomes an empty cell, as pandas writes it.

The package repeats the same rows in several files (the three sub-challenges, aligned and
unaligned folders). Each video's rows are formatted once, and a file whose bytes equal a file
already written for the same video becomes a hard link to it, which keeps `--scale full` within
a disk. So replace a package file rather than edit it in place (`shutil.copytree` copies
resolve the links).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

DIGITS = 5  # significant digits of a column's largest magnitude
MAX_DECIMALS = 6
_LIMIT = 10**DIGITS - 1  # the largest rounded magnitude a table holds, in its last decimal
_NAN = 2 * _LIMIT + 1  # table index of the empty cell
_CHUNK_CELLS = 1 << 21  # rows are formatted in chunks of about this many cells


@cache
def _numbers(decimals: int) -> np.ndarray:
    """Every number from -_LIMIT to _LIMIT units of the last decimal, shortest text, then ''."""
    scale = 10**decimals
    texts = [f"{k / scale:.{decimals}f}" for k in range(-_LIMIT, _LIMIT + 1)]
    if decimals:
        texts = [text.rstrip("0").rstrip(".") for text in texts]
    texts.append("")
    return np.array(texts, dtype=object)


def column_decimals(values: np.ndarray) -> np.ndarray:
    """Decimals per column: five significant digits of its largest finite magnitude."""
    with np.errstate(invalid="ignore"):
        largest = np.nanmax(np.where(np.isfinite(values), np.abs(values), 0.0), axis=0,
                            initial=0.0)
    magnitude = np.floor(np.log10(np.maximum(largest, 10.0**-MAX_DECIMALS)))
    return np.clip(DIGITS - 1 - magnitude, 0, MAX_DECIMALS).astype(np.int64)


def format_rows(values: np.ndarray) -> list[str]:
    """Each row of `values` as comma-separated text (no newline). Magnitudes of 10^5 and more
    would be clipped; the generator's descriptors stay below (`descriptors`)."""
    rows: list[str] = []
    decimals = column_decimals(values)
    groups = [(int(d), np.flatnonzero(decimals == d)) for d in np.unique(decimals)]
    step = max(1, _CHUNK_CELLS // values.shape[1])
    for begin in range(0, len(values), step):
        chunk = values[begin:begin + step]
        missing = np.isnan(chunk)
        cells = np.empty(chunk.shape, dtype=object)
        for d, columns in groups:
            part = np.where(missing[:, columns], 0.0, chunk[:, columns])
            index = np.clip(np.rint(part * 10**d), -_LIMIT, _LIMIT).astype(np.int64) + _LIMIT
            index[missing[:, columns]] = _NAN
            cells[:, columns] = _numbers(d)[index]
        rows += [",".join(row) for row in cells.tolist()]
    return rows


def table_lines(keys: Sequence[np.ndarray], values: np.ndarray) -> list[str]:
    """One CSV line per row: the integer key columns, then the values."""
    prefixes = [",".join(map(str, key)) for key in zip(*(k.tolist() for k in keys), strict=True)]
    return [f"{p},{v}\n" for p, v in zip(prefixes, format_rows(values), strict=True)]


def header(key_columns: Sequence[str], dim: int) -> str:
    return ",".join([*key_columns, *map(str, range(dim))]) + "\n"


class PackageWriter:
    """Writes the files of a package under `root`, linking repeats within one video."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._written: dict[bytes, Path] = {}

    def start_video(self) -> None:
        """Forget the previous video's files: repeats only occur within a video."""
        self._written.clear()

    def write_bytes(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.blake2b(data, digest_size=16).digest()
        first = self._written.get(digest)
        if first is None:
            path.write_bytes(data)
            self._written[digest] = path
            return
        try:
            os.link(first, path)
        except OSError:  # a file system without hard links
            shutil.copyfile(first, path)

    def write_lines(self, path: Path, head: str, lines: list[str], rows: np.ndarray) -> None:
        """The header and the chosen `rows` of pre-formatted `lines`."""
        self.write_bytes(path, "".join([head, *(lines[i] for i in rows.tolist())]).encode())

    def write_frame(self, path: Path, frame: pd.DataFrame) -> None:
        """A small table (labels, metadata): floats with 4 decimals, as the labels are rounded."""
        self.write_bytes(path, frame.to_csv(index=False, float_format="%.4f").encode())
