"""The plan of a synthetic package: its size presets, videos, partitions and topic segments.

The plan holds a few numbers per segment and is made up front from the seed alone, so the
generator can then stream video by video and never holds more than one video's data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from muse.errors import MuseError
from muse.package.layout import FEATURE_SETS, STEP_MS, TOPIC_NAMES
from muse.package.synthetic.seeds import stream
from muse.tasks import ALL_PARTITIONS

STEPS_PER_MINUTE = 60_000 // STEP_MS
SEGMENT_STEPS = (32, 112)  # 8 to 28 s: about 6.5 k topic segments at full scale, as in MuSe-Topic
ADVERT_RATE = 0.1  # chance that a segment after the first is a non-product (advert) segment
PARTITION_SHARES = {"devel": 0.2, "test": 0.2}  # the rest is train
# How often each topic is talked about: imbalanced like the real package.
TOPIC_WEIGHTS = np.array([0.16, 0.07, 0.12, 0.10, 0.06, 0.09, 0.12, 0.13, 0.10, 0.05])
# Sub-challenges that keep the advert segments: MuSe-Wild and MuSe-Topic drop them.
KEEPS_ADVERTS = {"wild": False, "topic": False, "trust": True}


class SynthesisError(MuseError, ValueError):
    """The arguments of `synthesize` cannot make a package."""


@dataclass(frozen=True)
class Scale:
    """A size preset: `videos` and `minutes` (mean per video) and the feature sets to write."""

    videos: int
    minutes: float
    features: tuple[str, ...]


SCALES = {
    # Small enough that a default training run takes about a minute on two CPU cores.
    "demo": Scale(12, 2.0, ("egemaps", "fasttext", "vggface", "au")),
    # The real MuSe-CaR: 291 videos, 36 h, 518 400 label steps, every feature set.
    "full": Scale(291, 36 * 60 / 291, tuple(FEATURE_SETS)),
}


@dataclass(frozen=True)
class Segment:
    """A stretch of one topic: steps `start` (inclusive) to `stop` (exclusive) of its video."""

    segment_id: int
    start: int
    stop: int
    topic: int | None  # the noiseless topic class; None for an advert
    advert: bool = False


@dataclass(frozen=True)
class VideoPlan:
    """One video: id, partition, length in 250 ms steps and its segments, which cover every step."""

    video_id: int
    partition: str
    n_steps: int
    segments: tuple[Segment, ...]

    def segments_for(self, task: str) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if KEEPS_ADVERTS[task] or not s.advert)

    def step_segment_ids(self) -> np.ndarray:
        ids = np.empty(self.n_steps, dtype=np.int64)
        for segment in self.segments:
            ids[segment.start:segment.stop] = segment.segment_id
        return ids

    def step_mask(self, task: str) -> np.ndarray:
        """Which steps of the video the sub-challenge keeps."""
        mask = np.zeros(self.n_steps, dtype=bool)
        for segment in self.segments_for(task):
            mask[segment.start:segment.stop] = True
        return mask


def resolve(scale: str, videos: int | None, minutes: float | None,
            features: list[str] | None, seed: int) -> tuple[int, float, tuple[str, ...]]:
    """The preset's values overridden by the given ones, checked."""
    if scale not in SCALES:
        raise SynthesisError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    preset = SCALES[scale]
    videos = preset.videos if videos is None else videos
    minutes = preset.minutes if minutes is None else minutes
    chosen = preset.features if features is None else tuple(dict.fromkeys(features))
    unknown = [name for name in chosen if name not in FEATURE_SETS]
    if unknown:
        raise SynthesisError(
            f"unknown feature sets: {', '.join(unknown)}; known: {', '.join(FEATURE_SETS)}")
    if videos < len(ALL_PARTITIONS):
        raise SynthesisError(f"need at least {len(ALL_PARTITIONS)} videos (one per partition), "
                             f"got {videos}")
    if minutes <= 0:
        raise SynthesisError(f"minutes must be positive, got {minutes}")
    if seed < 0:
        raise SynthesisError(f"seed must be non-negative, got {seed}")
    return videos, minutes, chosen


def plan_package(videos: int, minutes: float, seed: int) -> list[VideoPlan]:
    """Videos sorted by id, about 60/20/20 over train/devel/test, at least one in each."""
    rng = stream(seed, "plan")
    ids = np.sort(rng.choice(np.arange(1, max(400, 2 * videos) + 1), size=videos, replace=False))
    partitions = _partitions(rng, videos)
    weights = rng.gamma(4.0, size=videos)  # lengths vary about +-50 % around the mean
    lengths = np.rint(weights / weights.sum() * videos * minutes * STEPS_PER_MINUTE)
    lengths = np.maximum(lengths.astype(int), SEGMENT_STEPS[0])
    plans = [
        VideoPlan(int(i), p, int(n), _segments(rng, int(n)))
        for i, p, n in zip(ids, partitions, lengths, strict=True)
    ]
    return _with_an_advert(plans)


def _partitions(rng: np.random.Generator, videos: int) -> list[str]:
    counts = {name: max(1, round(share * videos)) for name, share in PARTITION_SHARES.items()}
    names = ["train"] * (videos - sum(counts.values()))
    for name, count in counts.items():
        names += [name] * count
    return [names[i] for i in rng.permutation(videos)]


def _segments(rng: np.random.Generator, n_steps: int) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    start, previous_topic = 0, None
    while start < n_steps:
        length = int(rng.integers(SEGMENT_STEPS[0], SEGMENT_STEPS[1] + 1))
        if n_steps - (start + length) < SEGMENT_STEPS[0]:
            length = n_steps - start  # a short rest joins this segment
        advert = bool(segments) and rng.random() < ADVERT_RATE
        topic = None
        if not advert:
            # Consecutive speech segments differ in topic, else they would be one segment.
            weights = TOPIC_WEIGHTS.copy()
            if previous_topic is not None:
                weights[previous_topic] = 0.0
            topic = previous_topic = int(rng.choice(len(TOPIC_NAMES), p=weights / weights.sum()))
        segments.append(Segment(len(segments) + 1, start, start + length, topic, advert))
        start += length
    return tuple(segments)


def _with_an_advert(plans: list[VideoPlan]) -> list[VideoPlan]:
    """Make sure MuSe-Wild drops something: the last segment of a video turns into an advert."""
    if any(s.advert for plan in plans for s in plan.segments):
        return plans
    for index, plan in enumerate(plans):
        if len(plan.segments) > 1:
            last = replace(plan.segments[-1], topic=None, advert=True)
            plans[index] = replace(plan, segments=plan.segments[:-1] + (last,))
            break
    return plans
