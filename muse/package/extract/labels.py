"""A researcher's own continuous labels (`--labels`), read and resampled onto the label steps.

The table has one row per annotated time: `file` (the media file's name or stem), `timestamp`
(milliseconds), one column per target among `arousal`, `valence` and `trustworthiness`, and
optionally `partition` (train, devel or test; one per file, default test). Each label step of
the extracted package gets the value at its timestamp, linearly interpolated between the
annotated times; a step before the first or after the last annotation is left empty (masked),
as is every step of a target the table has no column for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from muse.package.extract.errors import ExtractError
from muse.tasks import ALL_PARTITIONS

TARGETS = ("arousal", "valence", "trustworthiness")


@dataclass(frozen=True)
class VideoLabels:
    """The annotated curve of one media file."""

    partition: str
    timestamp: np.ndarray  # int64 ms, increasing
    values: dict[str, np.ndarray]  # target -> float64, only the targets the table has

    def at(self, target: str, steps_ms: np.ndarray) -> np.ndarray:
        """The target's value at each step, NaN outside the annotated span or without a column."""
        result = np.full(len(steps_ms), np.nan)
        if target not in self.values:
            return result
        inside = (steps_ms >= self.timestamp[0]) & (steps_ms <= self.timestamp[-1])
        result[inside] = np.interp(steps_ms[inside], self.timestamp, self.values[target])
        return result


def read_labels(path: Path) -> dict[str, VideoLabels]:
    """File name or stem -> its labels; a malformed table is an error naming the file."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype={"file": str})
    except FileNotFoundError:
        raise ExtractError(f"{path}: label file not found") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ExtractError(f"{path}: unreadable label CSV ({err})") from None
    targets = [t for t in TARGETS if t in frame.columns]
    missing = [c for c in ("file", "timestamp") if c not in frame.columns]
    if missing or not targets:
        raise ExtractError(f"{path}: needs columns file, timestamp and at least one of "
                           f"{list(TARGETS)}; found {list(frame.columns)}")
    for column in ("timestamp", *targets):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        bad = numbers.isna() & frame[column].notna() if column != "timestamp" else numbers.isna()
        if bad.any():
            line = int(np.argmax(bad.to_numpy())) + 2
            raise ExtractError(f"{path}: line {line}, column {column!r}: "
                               f"{frame[column].iloc[line - 2]!r} is not a number")
        frame[column] = numbers
    labels = {}
    for name, rows in frame.groupby("file", sort=False):
        labels[str(name)] = _video_labels(path, str(name), rows, targets)
    return labels


def _video_labels(path: Path, name: str, rows: pd.DataFrame, targets: list[str]) -> VideoLabels:
    partition = "test"
    if "partition" in rows.columns:
        names = rows["partition"].astype(str).str.strip().str.lower().unique().tolist()
        if len(names) != 1 or names[0] not in ALL_PARTITIONS:
            raise ExtractError(f"{path}: {name} needs one partition among {list(ALL_PARTITIONS)}, "
                               f"found {names}")
        partition = names[0]
    rows = rows.sort_values("timestamp", kind="stable")
    timestamp = rows["timestamp"].to_numpy(np.float64)
    if np.any(np.diff(timestamp) == 0):
        raise ExtractError(f"{path}: {name} lists a timestamp twice")
    values = {}
    for target in targets:
        known = rows[target].notna().to_numpy()
        if known.any():
            values[target] = np.interp(timestamp, timestamp[known],
                                       rows[target].to_numpy(np.float64)[known])
    return VideoLabels(partition, timestamp.astype(np.int64), values)
