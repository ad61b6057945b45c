"""The official MuSe 2020 metrics: whole-array functions, streaming Lightning metrics, ranking."""

from muse.metrics.functional import (
    classification_scores,
    continuous_scores,
    mean_absolute_error,
    micro_f1,
    official_ccc,
    pearson,
    round_ccc,
    round_continuous,
    round_percent,
    textbook_ccc,
    topic_score,
    uar,
)
from muse.metrics.ranking import RankedSystem, topic_ranking
from muse.metrics.streaming import StreamingCCC, StreamingClassification

__all__ = [
    "RankedSystem",
    "StreamingCCC",
    "StreamingClassification",
    "classification_scores",
    "continuous_scores",
    "mean_absolute_error",
    "micro_f1",
    "official_ccc",
    "pearson",
    "round_ccc",
    "round_continuous",
    "round_percent",
    "textbook_ccc",
    "topic_ranking",
    "topic_score",
    "uar",
]
