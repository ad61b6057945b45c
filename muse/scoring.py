"""The official scorer: join a submission to the aggregated labels and score the partition.

Semantics follow the organisers' evaluation script, with its silent exits turned into
`ScoringError`s that name the file and the offending columns or keys: predictions must carry
the key columns and every `prediction_<target>` column (extra columns are ignored, columns are
found by name); labels and predictions are outer-joined on the key columns and every key must
be on both sides; no prediction may be missing. Metrics run over all rows of the partition
together, with the official rounding (see `muse.metrics.functional`): per continuous target
the CCC, the Pearson correlation and the mean absolute error, as the official scorer prints them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from muse.errors import ScoringError
from muse.metrics.functional import (
    classification_scores,
    continuous_scores,
    round_ccc,
    round_percent,
)
from muse.tasks import TASKS, Task

MAX_LISTED = 5  # keys quoted in an error message; the count says how many there are in all


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as error:  # missing, unreadable, empty or malformed
        raise ScoringError(f"cannot read {path}: {error}") from error
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def _key_list(keys: pd.DataFrame) -> str:
    """'(id, timestamp) (3, 250), (3, 500), ...': the key names, then the first few keys."""
    shown = ", ".join(str(tuple(row)) for row in keys.head(MAX_LISTED).itertuples(index=False))
    more = ", ..." if len(keys) > MAX_LISTED else ""
    return f"({', '.join(keys.columns)}) {shown}{more}"


def _require_columns(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        present = ", ".join(map(str, frame.columns))
        raise ScoringError(f"{name} lacks column(s) {', '.join(missing)} (has: {present})")


def _normalise_keys(frame: pd.DataFrame, key: list[str], name: str) -> pd.DataFrame:
    """Key columns as int64 where integral, so '250.0' in one file still matches '250'."""
    frame = frame.copy()
    for column in key:
        values = frame[column]
        empty = int(values.isna().sum())
        if empty:
            raise ScoringError(f"{name}: key column {column} has {empty} empty cell(s)")
        if pd.api.types.is_numeric_dtype(values) and (values % 1 == 0).all():
            frame[column] = values.astype(np.int64)
    duplicated = frame[frame.duplicated(key, keep="first")][key]
    if len(duplicated):
        raise ScoringError(f"{name}: {len(duplicated)} duplicated key(s): {_key_list(duplicated)}")
    return frame


def _join(
    task: Task, labels: pd.DataFrame, predictions: pd.DataFrame, names: tuple[str, str]
) -> pd.DataFrame:
    key = list(task.key)
    labels = _normalise_keys(labels[key + task.label_columns()], key, names[0])
    predictions = _normalise_keys(predictions[key + task.prediction_columns()], key, names[1])
    joined = labels.merge(predictions, on=key, how="outer", indicator=True)
    unpredicted = joined[joined["_merge"] == "left_only"][key]
    unknown = joined[joined["_merge"] == "right_only"][key]
    problems = [
        f"{len(keys)} {kind}: {_key_list(keys)}"
        for kind, keys in (
            ("missing key(s), labelled but not predicted", unpredicted),
            ("extra key(s), predicted but not labelled", unknown),
        )
        if len(keys)
    ]
    if problems:
        raise ScoringError(f"{names[1]} does not match {names[0]}: " + "; ".join(problems))
    return joined.drop(columns="_merge")


def _values(
    joined: pd.DataFrame, column: str, key: list[str], name: str, classes: bool
) -> np.ndarray:
    values = joined[column]
    if not pd.api.types.is_numeric_dtype(values):
        raise ScoringError(f"{name}: column {column} is not numeric")
    values = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ScoringError(
            f"{name}: column {column} has {int(bad.sum())} empty or non-finite value(s), "
            f"at {_key_list(joined.loc[bad, key])}"
        )
    if classes:
        fractional = values % 1 != 0
        if fractional.any():
            raise ScoringError(
                f"{name}: column {column} must hold integer classes; {int(fractional.sum())} "
                f"value(s) are not, at {_key_list(joined.loc[fractional, key])}"
            )
        return values.astype(np.int64)
    return values


def score_frames(
    task: str,
    labels_df: pd.DataFrame,
    predictions_df: pd.DataFrame,
    labels_name: str = "labels",
    predictions_name: str = "predictions",
) -> dict:
    """Score one partition's predictions; the names say which file an error is about."""
    if task not in TASKS:
        raise ScoringError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    spec = TASKS[task]
    key = list(spec.key)
    _require_columns(labels_df, key + spec.label_columns(), labels_name)
    _require_columns(predictions_df, key + spec.prediction_columns(), predictions_name)
    joined = _join(spec, labels_df, predictions_df, (labels_name, predictions_name))
    if joined.empty:
        raise ScoringError(f"{labels_name} has no rows to score")

    result: dict = {"task": task, "n_rows": len(joined)}
    for target in spec.scored:
        truth = _values(joined, f"label_{target}", key, labels_name, not spec.continuous)
        guess = _values(joined, f"prediction_{target}", key, predictions_name, not spec.continuous)
        if spec.continuous:
            result[target] = continuous_scores(truth, guess)
        else:
            result[target] = classification_scores(truth, guess)

    rounded = round_ccc if spec.continuous else round_percent
    for part, targets in spec.parts:
        # The organisers average the already rounded per-target scores, and round again.
        values = [result[target][spec.metric] for target in targets]
        result[part] = rounded(sum(values) / len(values))
    return result


def score_files(task: str, labels_path: Path | str, predictions_path: Path | str) -> dict:
    """Score a prediction CSV against an aggregated label CSV (what `muse score` prints)."""
    labels_path, predictions_path = Path(labels_path), Path(predictions_path)
    return score_frames(
        task, _read_csv(labels_path), _read_csv(predictions_path),
        labels_name=str(labels_path), predictions_name=str(predictions_path),
    )
