"""The MuSe-Topic leaderboard rule: rank systems by emotion and by topic score, then by the mean.

Ranks are competition ranks: rank 1 is the highest score and systems tied on a score share the
best rank of their group (scores 90, 90, 80 rank 1, 1, 3). The final order is by mean rank;
a tie in mean rank goes to the better topic rank, and systems tied on both share a place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RankedSystem:
    """One system's row of the final MuSe-Topic ranking."""

    name: str
    emotion_score: float
    topic_score: float
    emotion_rank: int
    topic_rank: int
    mean_rank: float
    place: int


def _competition_ranks(scores: dict[str, float]) -> dict[str, int]:
    """Rank 1 for the highest score; equal scores share the smallest rank of their group."""
    values = list(scores.values())
    return {name: 1 + sum(other > score for other in values) for name, score in scores.items()}


def topic_ranking(systems: dict[str, tuple[float, float]]) -> list[RankedSystem]:
    """Rank `{name: (emotion_score, topic_score)}`; the result is ordered from first place."""
    for name, pair in systems.items():
        if len(pair) != 2 or not all(math.isfinite(score) for score in pair):
            raise ValueError(f"system {name!r} needs finite (emotion, topic) scores, got {pair}")
    emotion = _competition_ranks({name: pair[0] for name, pair in systems.items()})
    topic = _competition_ranks({name: pair[1] for name, pair in systems.items()})
    order_key = {name: ((emotion[name] + topic[name]) / 2, topic[name]) for name in systems}
    ranked = [
        RankedSystem(
            name=name,
            emotion_score=float(systems[name][0]),
            topic_score=float(systems[name][1]),
            emotion_rank=emotion[name],
            topic_rank=topic[name],
            mean_rank=order_key[name][0],
            place=1 + sum(other < order_key[name] for other in order_key.values()),
        )
        for name in systems
    ]
    # Names only break the display order of systems that share a place.
    return sorted(ranked, key=lambda row: (row.place, row.name))
