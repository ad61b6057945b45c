"""Reading the official challenge package, one file at a time, tolerant of its known quirks.

Every reader takes columns by name, raises `PackageError` naming the file for anything it cannot
use (unreadable, empty, wrong dimension, missing columns), and never holds more than one file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import wavfile
from scipy.signal import resample_poly

from muse.data.layout import (
    FEATURE_SETS,
    PARTITION_FILE,
    PARTITIONS,
    STEP_COLUMNS,
    WORD_LEVEL_COLUMNS,
    feature_dir,
    is_word_level,
    label_dir,
)
from muse.errors import PackageError

log = logging.getLogger(__name__)


def read_csv(path: Path, required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read one package CSV; a missing, unreadable or empty file or missing column is an error."""
    try:
        frame = pd.read_csv(path)
    except FileNotFoundError:
        raise PackageError(f"{path}: file not found") from None
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError) as err:
        raise PackageError(f"{path}: unreadable CSV ({err})") from None
    if frame.empty:
        raise PackageError(f"{path}: the file has no rows")
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PackageError(f"{path}: missing column(s) {missing}; found {list(frame.columns)[:8]}")
    return frame


def read_partition(package: Path) -> dict[int, str]:
    """Video id -> partition; ids listed twice are kept once (the real file has such rows)."""
    path = Path(package) / PARTITION_FILE
    frame = read_csv(path, ("Id", "Proposal"))
    frame["Proposal"] = frame["Proposal"].astype(str).str.strip().str.lower()
    bad = sorted(set(frame["Proposal"]) - set(PARTITIONS))
    if bad:
        raise PackageError(f"{path}: unknown partition name(s) {bad}; expected {list(PARTITIONS)}")
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


def read_feature_file(path: Path, word_level: bool, dim: int | None) -> FeatureTable:
    """Read a feature CSV, check its dimension against `dim` (when known) and impute NaN with 0."""
    time_columns = WORD_LEVEL_COLUMNS if word_level else STEP_COLUMNS
    frame = read_csv(path, time_columns)
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
    try:
        # One conversion of the whole frame is much cheaper than selecting hundreds of columns.
        values = frame.to_numpy(dtype=np.float32)[:, [i for _, i in ordered]]
    except (ValueError, TypeError):
        raise PackageError(f"{path}: non-numeric cells in the feature columns") from None
    nan = np.isnan(values)
    nan_cells = int(nan.sum())
    if nan_cells:
        values[nan] = 0.0
    times = {name: _integer_column(path, frame[name]) for name in time_columns}
    first = "start" if word_level else "timestamp"
    return FeatureTable(
        timestamp=times[first],
        end=times["end"] if word_level else None,
        segment_id=times["segment_id"],
        values=values,
        nan_cells=nan_cells,
    )


def _integer_column(path: Path, column: pd.Series) -> np.ndarray:
    """A time or id column as int64; empty or fractional cells are an error naming the file."""
    values = column.to_numpy()
    if values.dtype.kind in "iu":
        return values.astype(np.int64, copy=False)
    if values.dtype.kind != "f" or np.isnan(values).any() or (values != np.round(values)).any():
        raise PackageError(f"{path}: column {column.name!r} must hold whole numbers without gaps")
    return values.astype(np.int64)


def feature_path(package: Path, task: str, alignment: str, feature: str, video: int) -> Path:
    return feature_dir(package, task, alignment) / feature / f"{video}.csv"


def read_feature(package: Path, task: str, alignment: str, feature: str, video: int,
                 dim: int | None) -> FeatureTable:
    path = feature_path(package, task, alignment, feature, video)
    return read_feature_file(path, is_word_level(alignment, feature), dim)


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
        timestamp = frame["timestamp"].to_numpy(np.int64)
        segment_id = frame["segment_id"].to_numpy(np.int64)
        if result is None:
            result = ContinuousLabels(timestamp, segment_id, {})
        else:
            check_same_rows(path, (result.timestamp, result.segment_id), (timestamp, segment_id),
                            ("timestamp", "segment_id"))
        result.values[target] = frame["value"].to_numpy(np.float32)
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
        f"{len(expected[0])}); first mismatching row {row}: {_describe(found, names, row)} vs "
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
        if frame["segment_id"].duplicated().any():
            raise PackageError(f"{path}: segment_id listed twice")
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
    """The words of a transcript file joined in order; a missing file is an empty text."""
    if not path.exists():
        return ""
    frame = read_csv(path, ("word",))
    if "start" in frame.columns:
        frame = frame.sort_values("start", kind="stable")
    return " ".join(frame["word"].dropna().astype(str))


def read_audio(path: Path, rate: int) -> np.ndarray:
    """Read a wav file as mono int16 resampled to `rate` Hz."""
    try:
        source_rate, samples = wavfile.read(path)
    except (ValueError, OSError) as err:
        raise PackageError(f"{path}: unreadable wav ({err})") from None
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    samples = _as_float(samples)
    if source_rate != rate:
        divisor = np.gcd(int(source_rate), int(rate))
        samples = resample_poly(samples, rate // divisor, source_rate // divisor)
    return np.clip(np.round(samples * 32767.0), -32768, 32767).astype(np.int16)


def _as_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype.kind == "f":
        return samples.astype(np.float64)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float64) - 128.0) / 128.0
    return samples.astype(np.float64) / float(np.iinfo(samples.dtype).max + 1)
