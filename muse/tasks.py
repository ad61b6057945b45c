"""The three MuSe 2020 sub-challenges: the one place their rules are written down.

A `Task` says what the package holds for a sub-challenge (its folder, its targets with label
files, its aligned feature folders), what is scored (the scored targets, the aggregated table's
key columns, whether rows are per segment or per step) and how the task score combines the
targets (`parts`). Everything that needs one of these facts reads it here, never from a table's
columns: the scorer, the LightningModule's monitored score, the sweep objective, the plots.

Partitions are named by their use: `ALL_PARTITIONS` are the package's, `EVALUATED_PARTITIONS`
those a run predicts and scores (train is what it learns from).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

ALL_PARTITIONS = ("train", "devel", "test")
EVALUATED_PARTITIONS = ("devel", "test")
MONITOR = "devel/score"  # the metric checkpointing, early stopping and sweeps follow (conf/task)
MONITOR_MODE = "max"

Value = TypeVar("Value")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


@dataclass(frozen=True)
class Task:
    """A sub-challenge: its folder, targets, alignments, the scorer's table and score rule.

    `parts` names the task score's parts in the scorer's output order, each the targets whose
    mean it is: a single part is the task's `score`; MuSe-Topic has two (the emotion score and
    the topic score) and its monitored score is their mean. The official ranking of MuSe-Topic
    compares systems by rank and has no per-system score; the mean is muse's one monitor.
    """

    name: str
    folder: str
    targets: tuple[str, ...]  # every target with label files in the package
    scored: tuple[str, ...]  # the targets of the aggregated table, in its column order
    key: tuple[str, ...]  # the aggregated table's key columns
    aligned: tuple[str, ...]  # the aligned feature folders
    continuous: bool  # regression on every step; otherwise classes, one per segment
    parts: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def per_segment(self) -> bool:
        """Rows are segments (`id, segment_id`), not 250 ms steps (`id, timestamp`)."""
        return not self.continuous

    @property
    def metric(self) -> str:
        """The per-target official metric the task score averages."""
        return "ccc" if self.continuous else "score"

    def label_columns(self) -> list[str]:
        return [f"label_{t}" for t in self.scored]

    def prediction_columns(self) -> list[str]:
        return [f"prediction_{t}" for t in self.scored]

    def combine(self, scores: Mapping[str, Value],
                mean: Callable[[list[Value]], Value] = _mean) -> Value | None:
        """The task score from per-target scores: the mean of the parts' means.

        A model without some scored target (e.g. a topic-only model) is scored on those it has;
        None when it has none. `mean` lets tensors (the module's streaming metrics) pass.
        """
        means = []
        for _, targets in self.parts:
            present = [scores[t] for t in targets if t in scores]
            if present:
                means.append(mean(present))
        return mean(means) if means else None

    def objective(self, scores: Mapping | None) -> float | None:
        """The monitored score from the official scores of one partition (`muse score`'s
        output): the value sweeps and searches optimise; None for an unscored partition."""
        scores = scores or {}
        names = [name for name, _ in self.parts]
        if len(names) == 1:
            return scores.get(names[0])
        if not all(name in scores for name in names):
            return None
        return _mean([scores[name] for name in names])


TASKS: dict[str, Task] = {
    "wild": Task(
        "wild", "c1_muse_wild", ("arousal", "valence"), ("arousal", "valence"),
        ("id", "timestamp"), ("label_aligned",), True,
        (("score", ("arousal", "valence")),),
    ),
    "topic": Task(
        "topic", "c2_muse_topic", ("topic", "arousal", "valence"),
        ("arousal", "valence", "topic"), ("id", "segment_id"),
        ("egemaps_aligned", "fasttext_aligned"), False,
        (("emotion_score", ("arousal", "valence")), ("topic_score", ("topic",))),
    ),
    "trust": Task(
        "trust", "c3_muse_trust", ("trustworthiness", "arousal", "valence"),
        ("trustworthiness",), ("id", "timestamp"), ("label_aligned",), True,
        (("score", ("trustworthiness",)),),
    ),
}
