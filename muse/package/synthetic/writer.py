"""CSV text for feature tables, fast and deterministic, and the file writer of a package.

Formatting floats is the generator's bottleneck (millions of cells; `%`-formatting manages
about 2 M cells/s). Feature values are rounded to `DECIMALS` places and looked up in a table
of pre-formatted numbers, several times faster; NaN becomes an empty cell, as pandas writes it.

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

DECIMALS = 3
_LIMIT = 10**5 - 1  # the largest rounded magnitude the table holds: 99.999
_NAN = 2 * _LIMIT + 1  # table index of the empty cell
_CHUNK_CELLS = 1 << 21  # rows are formatted in chunks of about this many cells


@cache
def _numbers() -> np.ndarray:
    """Every number from -99.999 to 99.999 in steps of 0.001, shortest text, then ''."""
    scale = 10**DECIMALS
    texts = [f"{k / scale:.{DECIMALS}f}".rstrip("0").rstrip(".")
             for k in range(-_LIMIT, _LIMIT + 1)]
    texts.append("")
    return np.array(texts, dtype=object)


def format_rows(values: np.ndarray) -> list[str]:
    """Each row of `values` as comma-separated text (no newline). Magnitudes beyond 99.999
    would be clipped; the generator's features stay well inside."""
    rows: list[str] = []
    step = max(1, _CHUNK_CELLS // values.shape[1])
    for begin in range(0, len(values), step):
        chunk = values[begin:begin + step]
        missing = np.isnan(chunk)
        index = np.clip(np.rint(np.where(missing, 0.0, chunk) * 10**DECIMALS), -_LIMIT, _LIMIT)
        index = index.astype(np.int64) + _LIMIT
        index[missing] = _NAN
        rows += [",".join(cells) for cells in _numbers()[index].tolist()]
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
