"""Reading the official challenge package, one file at a time, tolerant of its known quirks.

Every reader takes columns by name, raises `PackageError` naming the file for anything it cannot
use (unreadable, empty, wrong dimension, missing columns), and never holds more than one file.
"""

from __future__ import annotations

import io
import logging
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import wavfile
from scipy.signal import resample_poly

from muse.errors import PackageError
from muse.package.layout import (
    FEATURE_SETS,
    PARTITION_FILE,
    STEP_COLUMNS,
    WORD_LEVEL_COLUMNS,
    feature_dir,
    is_word_level,
    label_dir,
)
from muse.tasks import ALL_PARTITIONS

log = logging.getLogger(__name__)


def read_csv(path: Path, required: tuple[str, ...] = (), *, header_only_ok: bool = False,
             whole_rows: bool = True) -> pd.DataFrame:
    """Read one package CSV; a missing, unreadable or (unless `header_only_ok`) header-only
    file, a missing column or (with `whole_rows`) a row with fewer cells than the header is an
    error naming the file. A UTF-8 byte-order mark and CRLF line endings are read as usual."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise PackageError(f"{path}: file not found") from None
    except OSError as err:
        raise PackageError(f"{path}: unreadable ({err.strerror})") from None
    try:
        frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise PackageError(f"{path}: unreadable CSV ({err})") from None
    # A short row always lacks the header's last cell, which pandas makes NaN: only a file with
    # a NaN in its last column needs its cells counted.
    if whole_rows and len(frame.columns) and frame.iloc[:, -1].isna().any():
        _check_whole_rows(path, data, len(frame))
    if frame.empty and not header_only_ok:
        raise PackageError(f"{path}: the file has a header but no rows")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PackageError(f"{path}: missing column(s) {missing}; found {list(frame.columns)[:8]}")
    return frame


def _check_whole_rows(path: Path, data: bytes, rows: int) -> None:
    """Raise naming the first line with fewer cells than the header: pandas would silently
    fill the missing cells with NaN, which prepare would then impute like a real NaN cell.

    Counts commas, so it is meant for the numeric files (no quoted commas). pandas has refused
    lines with too many cells, so all `rows` lines are whole exactly when the file holds
    (header cells - 1) commas per line: one count over the bytes, and a line-by-line search
    only when a line is short.
    """
    header_end = data.find(b"\n")
    header_end = len(data) if header_end < 0 else header_end
    header = data.count(b",", 0, header_end) + 1
    if data.count(b",") == (header - 1) * (rows + 1):
        return
    start, line = header_end + 1, 2
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        cells = data.count(b",", start, end) + 1
        if cells < header and data[start:end].strip():
            raise PackageError(f"{path}: line {line} has {cells} cells, the header has "
                               f"{header} (a row cut short or missing its last cells)")
        start, line = end + 1, line + 1


def read_partition(package: Path) -> dict[int, str]:
    """Video id -> partition; ids listed twice are kept once (the real file has such rows)."""
    path = Path(package) / PARTITION_FILE
    frame = read_csv(path, ("Id", "Proposal"))
    frame["Id"] = integer_column(path, frame["Id"])
    frame["Proposal"] = frame["Proposal"].astype(str).str.strip().str.lower()
    bad = sorted(set(frame["Proposal"]) - set(ALL_PARTITIONS))
    if bad:
        raise PackageError(f"{path}: unknown partition name(s) {bad}; "
                           f"expected {list(ALL_PARTITIONS)}")
    duplicates = frame[frame.duplicated("Id", keep=False)]
    conflicting = duplicates.groupby("Id")["Proposal"].nunique()
    if (conflicting > 1).any():
        ids = conflicting[conflicting > 1].index.tolist()[:5]
        raise PackageError(f"{path}: video id(s) {ids} are listed in different partitions")
    if len(duplicates):
        log.warning("%s: %d duplicate row(s) removed (ids %s)", path,
                    len(frame) - frame["Id"].nunique(), sorted(set(duplicates["Id"]))[:10])
    frame = frame.drop_duplicates("Id")
    return {int(i): p for i, p in zip(frame["Id"], frame["Proposal"], strict=True)}


def feature_names(package: Path, task: str, alignment: str) -> list[str]:
    """The feature folders present under one alignment, known or not, sorted by name."""
    root = feature_dir(package, task, alignment)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def expected_dim(feature: str) -> int | None:
    known = FEATURE_SETS.get(feature)
    return known.dim if known else None


@dataclass
class FeatureTable:
    """One feature file: its time columns, segment ids and float32 values (NaN already imputed)."""

    timestamp: np.ndarray  # int64 ms; the word's start for word-level files
    end: np.ndarray | None  # int64 ms, word-level files only
    segment_id: np.ndarray  # int64
    values: np.ndarray  # (rows, dim) float32
    nan_cells: int
    duplicate_keys: int = 0  # rows repeating an earlier row's time and segment (word-level)


def read_feature_file(path: Path, word_level: bool, dim: int | None,
                      header_only_ok: bool = False, unique_keys: bool = True) -> FeatureTable:
    """Read a feature CSV, check its dimension against `dim` (when known) and impute NaN with 0.

    `header_only_ok`: a header without rows is a video without frames (unaligned files).
    `unique_keys`: a repeated (time, segment_id) key is an error naming the file; otherwise the
    repeated rows are counted in `duplicate_keys`."""
    time_columns = WORD_LEVEL_COLUMNS if word_level else STEP_COLUMNS
    frame = read_csv(path, time_columns, header_only_ok=header_only_ok)
    named = [(c, i) for i, c in enumerate(frame.columns) if c not in time_columns]
    try:
        ordered = sorted(named, key=lambda item: int(item[0]))
    except ValueError:
        odd = [c for c, _ in named if not c.lstrip("-").isdigit()][:5]
        raise PackageError(f"{path}: feature columns must be named 0..D-1, found {odd}") from None
    if [int(c) for c, _ in ordered] != list(range(len(ordered))):
        raise PackageError(f"{path}: feature columns are not 0..{len(ordered) - 1}")
    if dim is not None and len(ordered) != dim:
        raise PackageError(f"{path}: {len(ordered)} feature columns, expected {dim}")
    if not ordered:
        raise PackageError(f"{path}: no feature columns")
    times = {name: integer_column(path, frame[name]) for name in time_columns}
    try:
        # One conversion of the whole frame is much cheaper than selecting hundreds of columns.
        values = frame.to_numpy(dtype=np.float32)[:, [i for _, i in ordered]]
    except (ValueError, TypeError):
        raise _non_numeric_error(path, frame, [c for c, _ in ordered]) from None
    nan = np.isnan(values)
    nan_cells = int(nan.sum())
    if nan_cells:
        values[nan] = 0.0
    keys = {name: times[name] for name in time_columns}
    duplicates = count_duplicate_keys(path, keys, fail=unique_keys)
    first = "start" if word_level else "timestamp"
    return FeatureTable(
        timestamp=times[first],
        end=times["end"] if word_level else None,
        segment_id=times["segment_id"],
        values=values,
        nan_cells=nan_cells,
        duplicate_keys=duplicates,
    )


def _non_numeric_error(path: Path, frame: pd.DataFrame, columns: list[str]) -> PackageError:
    """The error naming the first cell of `columns` that is not a number (line and column)."""
    for name in columns:
        column = frame[name]
        bad = pd.to_numeric(column, errors="coerce").isna() & column.notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            return PackageError(f"{path}: line {row + 2}, column {name!r}: "
                                f"{column.iloc[row]!r} is not a number")
    return PackageError(f"{path}: non-numeric cells in column(s) {columns[:8]}")


def integer_column(path: Path, column: pd.Series) -> np.ndarray:
    """A time or id column as int64; an empty, non-numeric or fractional cell is an error
    naming the file, the line and the column."""
    values = column.to_numpy()
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    if not len(values):
        return np.empty(0, np.int64)
    if values.dtype.kind != "f":
        numbers = pd.to_numeric(column, errors="coerce")
        if numbers.isna().any():
            raise _non_numeric_error(path, column.to_frame(), [str(column.name)])
        values = numbers.to_numpy(np.float64)
    gaps = np.isnan(values)
    if gaps.any():
        row = int(np.argmax(gaps))
        raise PackageError(f"{path}: line {row + 2}, column {column.name!r} is empty")
    fractional = values != np.round(values)
    if fractional.any():
        row = int(np.argmax(fractional))
        raise PackageError(f"{path}: line {row + 2}, column {column.name!r}: {values[row]!r} "
                           "is not a whole number")
    return values.astype(np.int64)


def float_column(path: Path, column: pd.Series) -> np.ndarray:
    """A value column as float32 (empty cells are NaN); a non-numeric cell is an error naming
    the file, the line and the column."""
    if column.dtype.kind in "iuf" or not len(column):
        return column.to_numpy(np.float32)
    raise _non_numeric_error(path, column.to_frame(), [str(column.name)])


def count_duplicate_keys(path: Path, keys: dict[str, np.ndarray], fail: bool) -> int:
    """Rows repeating an earlier row's key columns; with `fail`, the first one is an error
    naming the file and both lines (the scorer would reject the repeated key after training)."""
    columns = list(keys.values())
    if len(columns[0]) < 2 or np.all(columns[0][1:] > columns[0][:-1]):
        return 0  # the usual file: times strictly increasing, no repeat possible
    order = np.lexsort(columns[::-1])
    same = np.ones(len(order) - 1, dtype=bool)
    for column in columns:
        same &= column[order][1:] == column[order][:-1]
    if not fail or not same.any():
        return int(same.sum())
    frame = pd.DataFrame(keys)
    row = int(np.argmax(frame.duplicated().to_numpy()))
    first = int(np.argmax((frame == frame.iloc[row]).all(axis=1).to_numpy()))
    described = ", ".join(f"{n}={int(v[row])}" for n, v in keys.items())
    raise PackageError(f"{path}: line {row + 2} repeats the key ({described}) of line "
                       f"{first + 2}")


def feature_path(package: Path, task: str, alignment: str, feature: str, video: int) -> Path:
    return feature_dir(package, task, alignment) / feature / f"{video}.csv"


def read_feature(package: Path, task: str, alignment: str, feature: str, video: int,
                 dim: int | None) -> FeatureTable:
    """One feature file by the rules of its folder (docs/package-layout.md): an unaligned file
    may hold a header only (no frames); step rows must have unique keys, word rows need not."""
    path = feature_path(package, task, alignment, feature, video)
    word_level = is_word_level(alignment, feature)
    return read_feature_file(path, word_level, dim, header_only_ok=alignment == "unaligned",
                             unique_keys=not word_level)


@dataclass
class ContinuousLabels:
    """One video's label steps: shared (timestamp, segment_id) rows, one value per target."""

    timestamp: np.ndarray
    segment_id: np.ndarray
    values: dict[str, np.ndarray]  # target -> float32, NaN where masked


def continuous_label_path(package: Path, task: str, target: str, video: int) -> Path:
    return label_dir(package, task, target) / f"{video}.csv"


def read_continuous_labels(package: Path, task: str, targets: tuple[str, ...],
                           video: int) -> ContinuousLabels:
    """Read every target's label file of a video; all must list the same steps."""
    result: ContinuousLabels | None = None
    for target in targets:
        path = continuous_label_path(package, task, target, video)
        frame = read_csv(path, ("timestamp", "value", "segment_id"))
        timestamp = integer_column(path, frame["timestamp"])
        segment_id = integer_column(path, frame["segment_id"])
        count_duplicate_keys(path, {"timestamp": timestamp, "segment_id": segment_id}, fail=True)
        if result is None:
            result = ContinuousLabels(timestamp, segment_id, {})
        else:
            check_same_rows(path, (result.timestamp, result.segment_id), (timestamp, segment_id),
                            ("timestamp", "segment_id"))
        result.values[target] = float_column(path, frame["value"])
    assert result is not None
    return result


def check_same_rows(path: Path, expected: tuple[np.ndarray, ...], found: tuple[np.ndarray, ...],
                    names: tuple[str, ...], reference_name: str = "labels") -> None:
    """Raise naming `path` and the first row whose key columns differ from the reference rows."""
    shared = min(len(found[0]), len(expected[0]))
    mismatch = np.zeros(shared, dtype=bool)
    for f, e in zip(found, expected, strict=True):
        mismatch |= f[:shared] != e[:shared]
    if not mismatch.any() and len(found[0]) == len(expected[0]):
        return
    row = int(np.argmax(mismatch)) if mismatch.any() else shared
    raise PackageError(
        f"{path}: rows do not match the {reference_name} ({len(found[0])} rows vs "
        f"{len(expected[0])}); first mismatching row {row} (line {row + 2}): "
        f"{_describe(found, names, row)} vs "
        f"{reference_name} {_describe(expected, names, row)}")


def _describe(columns: tuple[np.ndarray, ...], names: tuple[str, ...], row: int) -> str:
    if row >= len(columns[0]):
        return "(no row)"
    return "(" + ", ".join(f"{n}={int(c[row])}" for n, c in zip(names, columns, strict=True)) + ")"


@dataclass
class TopicLabels:
    """The segments of one video with their classes (-1 = missing) and emotion means."""

    segment_id: np.ndarray
    classes: dict[str, np.ndarray]  # target -> int64
    means: dict[str, np.ndarray]  # arousal/valence -> float32


def read_topic_labels(package: Path, task: str, targets: tuple[str, ...],
                      video: int) -> TopicLabels:
    """Per-segment class files, joined on segment_id (segments of any file are kept)."""
    frames = {}
    for target in targets:
        path = label_dir(package, task, target) / f"{video}.csv"
        frame = read_csv(path, ("segment_id", "class_id"))
        frame["segment_id"] = integer_column(path, frame["segment_id"])
        count_duplicate_keys(path, {"segment_id": frame["segment_id"].to_numpy()}, fail=True)
        frame["class_id"] = float_column(path, frame["class_id"])
        if "mean" in frame.columns:
            frame["mean"] = float_column(path, frame["mean"])
        frames[target] = frame.set_index("segment_id")
    segments = np.unique(np.concatenate([f.index.to_numpy(np.int64) for f in frames.values()]))
    classes, means = {}, {}
    for target, frame in frames.items():
        aligned = frame.reindex(segments)
        classes[target] = aligned["class_id"].fillna(-1).to_numpy(np.int64)
        if "mean" in frame.columns:
            means[target] = aligned["mean"].to_numpy(np.float32)
    return TopicLabels(segments, classes, means)


def read_transcript(path: Path) -> str:
    """The words of a transcript file joined in order; a missing file or one with a header and
    no rows is an empty text (a segment nobody speaks in)."""
    if not path.exists():
        return ""
    # Words may be quoted and hold commas: the cell count of a line says nothing here.
    frame = read_csv(path, ("word",), header_only_ok=True, whole_rows=False)
    if "start" in frame.columns:
        frame = frame.sort_values("start", kind="stable")
    return " ".join(frame["word"].dropna().astype(str))


def read_audio(path: Path, rate: int) -> np.ndarray:
    """Read a wav file as mono int16 resampled to `rate` Hz; a truncated file is an error."""
    source_rate, samples = _read_wav(path)
    # Scale before mixing: the mean of int16 channels is float, and a float is taken as
    # already in [-1, 1].
    samples = _as_float(samples)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if not len(samples):
        return np.empty(0, np.int16)
    if source_rate != rate:
        divisor = np.gcd(int(source_rate), int(rate))
        samples = resample_poly(samples, rate // divisor, source_rate // divisor)
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def _read_wav(path: Path) -> tuple[int, np.ndarray]:
    """scipy's reader only warns, naming no file, when a wav ends before its header says."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", wavfile.WavFileWarning)
        try:
            source_rate, samples = wavfile.read(path)
        except (ValueError, OSError, struct.error) as err:
            raise PackageError(f"{path}: unreadable wav ({err})") from None
    for warning in caught:
        message = str(warning.message)
        if "prematurely" in message or "Incomplete chunk" in message:
            raise PackageError(f"{path}: truncated wav ({message})")
        log.warning("%s: %s", path, message)
    return int(source_rate), samples


def _as_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype.kind == "f":
        return samples.astype(np.float64)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float64) - 128.0) / 128.0
    return samples.astype(np.float64) / float(np.iinfo(samples.dtype).max + 1)
