"""Tiny HDF5 stores written by hand with h5py, following docs/hdf5-store.md (schema version 1).

Each writer returns the arrays it wrote, so tests can assert exact values without going
through `muse prepare`. Video ids are sorted but partitions interleave, features differ by
partition (so train-only statistics are detectable), and each video's audio ends a few samples
before its last label step ends (so the zero padding past the end is exercised).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

AUDIO_RATE = 80  # 20 samples per 250 ms step: small, and an integer number per step
CONTINUOUS_VIDEOS = {  # id: (partition, label steps); 120 steps = 2 full windows + 20
    3: ("devel", 60), 5: ("train", 120), 8: ("test", 45), 10: ("train", 50),
    14: ("devel", 33), 20: ("train", 7), 33: ("test", 20),
}
CONTINUOUS_FEATURES = {"egemaps": 3, "vggface": 2, "au": 4}
TOPIC_VIDEOS = {  # id: (partition, aligned steps per segment)
    2: ("train", [12, 3, 7]), 4: ("devel", [5, 9]), 6: ("train", [8, 1]),
    7: ("test", [4, 10, 2]), 9: ("devel", [6]), 11: ("test", [3, 3]),
}
TOPIC_FEATURES = {"egemaps": 3, "fasttext": 5}
PARTITION_SHIFT = {"train": 0.0, "devel": 5.0, "test": -3.0}


@dataclass
class Contents:
    """What a writer put in the store (rows of all videos concatenated, as in the file)."""

    path: Path
    video_ids: np.ndarray
    partitions: list[str]
    offsets: np.ndarray  # row offsets of the main table (label_aligned / egemaps_aligned)
    timestamps: np.ndarray
    features: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]  # per row (continuous) or per segment (topic)
    audio: np.ndarray | None = None
    audio_offsets: np.ndarray | None = None
    segment_offsets: dict[str, np.ndarray] = field(default_factory=dict)  # per alignment
    segment_ids: np.ndarray | None = None
    segment_video_ids: np.ndarray | None = None  # the video id of each segment
    texts: list[str] = field(default_factory=list)
    word_features: dict[str, np.ndarray] = field(default_factory=dict)  # fasttext_aligned


def _root(file: h5py.File, task: str, targets: list[str], schema_version: int,
          complete: bool | None, audio: bool = True) -> None:
    file.attrs["schema_version"] = schema_version
    file.attrs["task"] = task
    file.attrs["targets"] = json.dumps(targets)
    file.attrs["fingerprint"] = "test"
    file.attrs["audio_rate"] = AUDIO_RATE if audio else 0
    file.attrs["nan_cells"] = json.dumps({})
    file.attrs["skipped_videos"] = json.dumps([])
    if complete is not None:
        file.attrs["complete"] = complete


def _videos(file: h5py.File, ids: list[int], partitions: list[str]) -> None:
    file["videos/id"] = np.asarray(ids, dtype=np.int64)
    file.create_dataset("videos/partition", data=partitions, dtype=h5py.string_dtype())


def _offsets(counts: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _features(rng: np.random.Generator, dims: dict[str, int], row_partition: np.ndarray):
    shift = np.array([PARTITION_SHIFT[p] for p in row_partition], dtype=np.float32)[:, None]
    return {
        name: (rng.normal(size=(len(row_partition), dim)) * (k + 1) + shift + k).astype(np.float32)
        for k, (name, dim) in enumerate(dims.items())
    }


def _row_table(file: h5py.File, table: str, offsets: np.ndarray, timestamps: np.ndarray,
               segment_ids: np.ndarray, features: dict[str, np.ndarray]) -> None:
    file[f"{table}/video_offsets"] = offsets
    file[f"{table}/timestamp"] = timestamps.astype(np.int64)
    file[f"{table}/segment_id"] = segment_ids.astype(np.int64)
    for name, values in features.items():
        file[f"{table}/features/{name}"] = values
        file[f"{table}/features/{name}"].attrs["dim"] = values.shape[1]


def _audio(file: h5py.File, rng: np.random.Generator, ends_ms: list[int]):
    # 7 samples short of the last step's end: the tail of the last step reads as zeros.
    lengths = [end * AUDIO_RATE // 1000 - 7 for end in ends_ms]
    samples = rng.integers(-32768, 32768, size=sum(lengths)).astype(np.int16)
    offsets = _offsets(lengths)
    file["audio/video_offsets"] = offsets
    file["audio/samples"] = samples
    return samples, offsets


def write_continuous_store(
    path: Path, task: str = "wild", *, schema_version: int = 1, complete: bool | None = True,
    audio: bool = True,
) -> Contents:
    """A wild or trust store: 3 train, 2 devel, 2 test videos of label-aligned steps."""
    rng = np.random.default_rng(1)
    targets = ["arousal", "valence"] if task == "wild" else ["trustworthiness", "arousal",
                                                             "valence"]
    ids = list(CONTINUOUS_VIDEOS)
    partitions = [CONTINUOUS_VIDEOS[v][0] for v in ids]
    counts = [CONTINUOUS_VIDEOS[v][1] for v in ids]
    offsets = _offsets(counts)
    # 250 ms steps with a 1 s gap between the two segments of each video.
    stamps, segments = [], []
    for n in counts:
        half = n // 2
        stamps.append(np.arange(n) * 250 + np.where(np.arange(n) >= half, 1000, 0))
        segments.append(np.where(np.arange(n) >= half, 2, 1))
    timestamps, segment_ids = np.concatenate(stamps), np.concatenate(segments)
    row_partition = np.repeat(partitions, counts)
    features = _features(rng, CONTINUOUS_FEATURES, row_partition)
    labels = {t: rng.uniform(-1, 1, size=len(timestamps)).astype(np.float32) for t in targets}
    in_train = offsets[partitions.index("train")] + 3
    for values in labels.values():
        values[row_partition == "test"] = np.nan  # masked test labels, as in the package
        values[in_train] = np.nan  # a NaN inside a train video
    with h5py.File(path, "w") as file:
        _root(file, task, targets, schema_version, complete, audio)
        _videos(file, ids, partitions)
        _row_table(file, "label_aligned", offsets, timestamps, segment_ids, features)
        for name, values in labels.items():
            file[f"label_aligned/labels/{name}"] = values
        samples, audio_offsets = (
            _audio(file, rng, [int(s[-1]) + 250 for s in stamps]) if audio else (None, None)
        )
    return Contents(Path(path), np.asarray(ids), partitions, offsets, timestamps, features,
                    labels, samples, audio_offsets)


def write_topic_store(path: Path, *, schema_version: int = 1,
                      complete: bool | None = True) -> Contents:
    """A topic store: 2 videos per partition, 1-3 segments each, some labels missing (-1)."""
    rng = np.random.default_rng(2)
    targets = ["topic", "arousal", "valence"]
    ids = list(TOPIC_VIDEOS)
    partitions = [TOPIC_VIDEOS[v][0] for v in ids]
    steps = [n for v in ids for n in TOPIC_VIDEOS[v][1]]  # aligned steps per segment
    n_segments = [len(TOPIC_VIDEOS[v][1]) for v in ids]
    segment_ids = np.concatenate([np.arange(1, k + 1) for k in n_segments]).astype(np.int64)
    words = [max(1, n // 2) for n in steps]  # fasttext_aligned rows per segment
    texts = [" ".join(f"w{s}_{i}" for i in range(k)) for s, k in enumerate(words)]
    segment_partition = np.repeat(partitions, n_segments)

    step_offsets = _offsets(steps)
    # Within each video, segments follow each other with 500 ms of silence between them.
    starts = np.concatenate([
        np.cumsum([0] + [n * 250 + 500 for n in TOPIC_VIDEOS[v][1][:-1]]) for v in ids
    ]).astype(np.int64)
    ends = starts + np.asarray(steps) * 250
    timestamps = np.concatenate(
        [s + np.arange(n) * 250 for s, n in zip(starts, steps, strict=True)]
    )
    step_segment = np.repeat(segment_ids, steps)
    features = _features(rng, TOPIC_FEATURES, np.repeat(segment_partition, steps))
    word_offsets = _offsets(words)
    word_start = np.concatenate(
        [s + np.arange(k) * 300 for s, k in zip(starts, words, strict=True)]
    )
    word_features = _features(rng, TOPIC_FEATURES, np.repeat(segment_partition, words))
    labels = {
        "topic": rng.integers(0, 10, size=len(steps)),
        "arousal": rng.integers(0, 3, size=len(steps)),
        "valence": rng.integers(0, 3, size=len(steps)),
    }
    labels["arousal"][1] = -1
    labels["topic"][segment_partition == "test"] = -1

    def per_video(counts: list[int]) -> np.ndarray:
        # Video offsets of a table whose rows come segment by segment.
        per_segment = np.split(np.asarray(counts), np.cumsum(n_segments)[:-1])
        return _offsets([int(c.sum()) for c in per_segment])

    with h5py.File(path, "w") as file:
        _root(file, "topic", targets, schema_version, complete)
        _videos(file, ids, partitions)
        file["segments/video_offsets"] = _offsets(n_segments)
        file["segments/segment_id"] = segment_ids
        file["segments/start"] = starts
        file["segments/end"] = ends
        file.create_dataset("segments/text", data=texts, dtype=h5py.string_dtype())
        for name, values in labels.items():
            file[f"segments/labels/{name}"] = values.astype(np.int64)
            if name != "topic":
                file[f"segments/labels/{name}_mean"] = values.astype(np.float32) / 2
        _row_table(file, "egemaps_aligned", per_video(steps), timestamps, step_segment,
                   features)
        file["egemaps_aligned/segment_offsets"] = step_offsets
        _row_table(file, "fasttext_aligned", per_video(words), word_start,
                   np.repeat(segment_ids, words), word_features)
        file["fasttext_aligned/end"] = word_start + 250
        file["fasttext_aligned/segment_offsets"] = word_offsets
        last = _offsets(n_segments)[1:] - 1
        audio, audio_offsets = _audio(file, rng, [int(e) for e in ends[last]])
    return Contents(
        Path(path), np.asarray(ids), partitions, per_video(steps), timestamps, features, labels,
        audio, audio_offsets,
        segment_offsets={"egemaps_aligned": step_offsets, "fasttext_aligned": word_offsets},
        segment_ids=segment_ids, segment_video_ids=np.repeat(ids, n_segments), texts=texts,
        word_features=word_features,
    )
