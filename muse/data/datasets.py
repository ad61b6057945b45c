"""Torch datasets over a store, the collate functions that batch them, and their inverse.

Continuous tasks (wild, trust): windows over label-aligned rows
----------------------------------------------------------------
The store concatenates the label-aligned rows (one per 250 ms label step) of all videos; video
`v` owns rows `[offsets[v], offsets[v+1])`. An item is a *window*: a start row, a length and the
video it belongs to, all precomputed in three index arrays, so reading item `i` is one slice of
the fused feature rows, of the labels and of the timestamps. Windows never cross a video
boundary. With window 50 and hop 50, a video of 120 steps gives::

    rows    0 ........ 49 | 50 ........ 99 | 100 ... 119
    items   window 0      | window 1       | window 2: 20 real steps, padded to 50 by collate

Windows start every `hop` rows until one reaches the video's end; that last one is shorter and
the collate function pads it, with `mask` False on the padding. A video shorter than the window
is a single short window. Evaluation sequences are the same windows with no overlap: one per
whole video, or chunks of `eval_window` rows with hop = length, so every labelled row is in
exactly one item and each prediction maps back to its (video id, timestamp) row.

Topic: one item per segment
---------------------------
`<alignment>/segment_offsets` gives each segment's rows of the aligned table (250 ms steps for
`egemaps_aligned`, words for `fasttext_aligned`). An item is the segment's first
`segment_length` rows (longer segments are cropped; shorter ones are padded by collate), its
transcript and its labels (-1 = missing).

Batches
-------
`collate_sequences`: features (B,T,D) float32, mask (B,T) bool, labels (B,T,n) float32 (NaN
where the store has NaN and on padding), video_id (B,) int64, timestamp (B,T) int64 (-1 on
padding), optional audio (B,T,S) float32. `collate_segments`: features (B,L,D), mask (B,L),
labels (B,n) int64, video_id (B,), segment_id (B,) int64, text list[str].
`predictions_frame` turns predictions on such batches back into rows keyed like the scorer's
aggregated table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from muse.data.normalization import Normalizer
from muse.store.reader import Audio, MemoryRows, StreamedRows

Rows = MemoryRows | StreamedRows


@dataclass(frozen=True)
class Windows:
    """Items as three parallel arrays: first row, number of real rows, video index."""

    start: np.ndarray
    length: np.ndarray
    video: np.ndarray


def make_windows(
    offsets: np.ndarray, videos: np.ndarray, length: int | None, hop: int | None = None
) -> Windows:
    """Windows of `length` rows every `hop` rows within each of `videos` (indices into offsets).

    `length=None` gives one window per whole video; `hop` defaults to `length` (no overlap).
    """
    videos = np.asarray(videos, dtype=np.int64)
    first = offsets[videos]
    n = offsets[videos + 1] - first
    if length is None:
        keep = n > 0
        return Windows(first[keep], n[keep], videos[keep])
    hop = length if hop is None else hop
    if length < 1 or hop < 1:
        raise ValueError(f"window length and hop must be positive, got {length} and {hop}")
    # Number of windows per video: starts 0, hop, 2*hop, ... until a window reaches the end.
    count = np.where(n > length, -(-(n - length) // hop) + 1, (n > 0).astype(np.int64))
    owner = np.repeat(np.arange(len(videos)), count)
    rank = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    start = first[owner] + rank * hop
    end = first[owner] + n[owner]
    return Windows(start, np.minimum(length, end - start), videos[owner])


class SequenceDataset(Dataset):
    """Windows of label-aligned rows (continuous tasks); see the module docstring."""

    def __init__(
        self,
        windows: Windows,
        rows: Rows,
        labels: np.ndarray,
        timestamps: np.ndarray,
        video_ids: np.ndarray,
        normalizer: Normalizer | None = None,
        audio: Audio | None = None,
        audio_normalizer: Normalizer | None = None,
    ) -> None:
        self.windows = windows
        self.rows = rows
        self.labels = labels  # (N, n_targets) float32
        self.timestamps = timestamps  # (N,) int64
        self.video_ids = video_ids  # (V,) int64
        self.normalizer = normalizer
        self.audio = audio
        self.audio_normalizer = audio_normalizer

    def __len__(self) -> int:
        return len(self.windows.start)

    def __getitem__(self, index: int) -> dict:
        start = int(self.windows.start[index])
        stop = start + int(self.windows.length[index])
        video = int(self.windows.video[index])
        features = self.rows.read(start, stop)
        if self.normalizer is not None:
            features = self.normalizer(features)
        item = {
            "features": features,
            "labels": self.labels[start:stop],
            "timestamp": self.timestamps[start:stop],
            "video_id": self.video_ids[video],
        }
        if self.audio is not None:
            item["audio"] = self.audio.steps(video, item["timestamp"])
            if self.audio_normalizer is not None:
                item["audio"] = self.audio_normalizer(item["audio"])
        return item


class SegmentDataset(Dataset):
    """Topic segments, cropped to `length` rows of the aligned table; see the module docstring."""

    def __init__(
        self,
        segments: np.ndarray,
        segment_offsets: np.ndarray,
        length: int,
        rows: Rows,
        labels: np.ndarray,
        video_ids: np.ndarray,
        segment_ids: np.ndarray,
        texts: np.ndarray,
        normalizer: Normalizer | None = None,
    ) -> None:
        self.segments = np.asarray(segments, dtype=np.int64)  # indices into the segment arrays
        self.start = segment_offsets[self.segments]
        self.stop = np.minimum(segment_offsets[self.segments + 1], self.start + length)
        self.rows = rows
        self.labels = labels  # (S, n_targets) int64
        self.video_ids = video_ids  # (S,) the video id of each segment
        self.segment_ids = segment_ids
        self.texts = texts
        self.normalizer = normalizer

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> dict:
        segment = int(self.segments[index])
        features = self.rows.read(int(self.start[index]), int(self.stop[index]))
        if self.normalizer is not None:
            features = self.normalizer(features)
        return {
            "features": features,
            "labels": self.labels[segment],
            "video_id": self.video_ids[segment],
            "segment_id": self.segment_ids[segment],
            "text": str(self.texts[segment]),
        }


def _pad(arrays: Sequence[np.ndarray], length: int, fill: float, dtype: type) -> torch.Tensor:
    """Stack variable-length arrays into (B, length, ...) filled with `fill` after each one."""
    # Each cell is written once: the array, then the fill after it (np.full would write twice).
    out = np.empty((len(arrays), length, *arrays[0].shape[1:]), dtype=dtype)
    for row, array in zip(out, arrays, strict=True):
        row[: len(array)] = array
        row[len(array):] = fill
    return torch.from_numpy(out)


def _mask(lengths: Sequence[int], length: int) -> torch.Tensor:
    return torch.arange(length)[None, :] < torch.as_tensor(lengths)[:, None]


def collate_sequences(items: Sequence[dict], min_length: int = 0) -> dict:
    """Pad windows to the longest in the batch (at least `min_length`: training windows)."""
    lengths = [len(item["features"]) for item in items]
    length = max(max(lengths), min_length)
    batch = {
        "features": _pad([i["features"] for i in items], length, 0.0, np.float32),
        "mask": _mask(lengths, length),
        "labels": _pad([i["labels"] for i in items], length, np.nan, np.float32),
        "video_id": torch.as_tensor(np.array([i["video_id"] for i in items], dtype=np.int64)),
        "timestamp": _pad([i["timestamp"] for i in items], length, -1, np.int64),
    }
    if "audio" in items[0]:
        batch["audio"] = _pad([i["audio"] for i in items], length, 0.0, np.float32)
    return batch


def collate_segments(items: Sequence[dict], min_length: int = 0) -> dict:
    """Pad segments to the longest in the batch (at least `min_length`: the segment length)."""
    lengths = [len(item["features"]) for item in items]
    length = max(max(lengths), min_length)
    return {
        "features": _pad([i["features"] for i in items], length, 0.0, np.float32),
        "mask": _mask(lengths, length),
        "labels": torch.as_tensor(np.stack([i["labels"] for i in items]).astype(np.int64)),
        "video_id": torch.as_tensor(np.array([i["video_id"] for i in items], dtype=np.int64)),
        "segment_id": torch.as_tensor(np.array([i["segment_id"] for i in items], dtype=np.int64)),
        "text": [i["text"] for i in items],
    }


def _numpy(values: object) -> np.ndarray:
    tensor = torch.as_tensor(values).detach().cpu()
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()


def _per_target(
    predictions: object, targets: Sequence[str] | None, segments: bool
) -> dict[str, np.ndarray]:
    """{target: (B,T) values} or, for segments, {target: (B,) classes}.

    `predictions` is a mapping target -> values (a subset of `targets` is fine: a model may
    predict fewer targets than the store has; columns follow the order of `targets`), or one
    array with the targets stacked last ((B,T,n) or (B,n)). Segment scores of shape
    (B, classes) become their argmax class.
    """
    if isinstance(predictions, Mapping):
        names = [t for t in targets if t in predictions] if targets else list(predictions)
        if not names:
            raise ValueError(f"no predictions for any of the targets {list(targets or [])}")
        columns = {name: _numpy(predictions[name]) for name in names}
    else:
        if targets is None:
            raise ValueError("stacked predictions need the target names in their order")
        stacked = _numpy(predictions)
        columns = {name: stacked[..., k] for k, name in enumerate(targets)}
    expected_ndim = 1 if segments else 2
    for name, values in columns.items():
        if segments and values.ndim == 2:
            values = values.argmax(axis=1)
        elif not segments and values.ndim == 3 and values.shape[-1] == 1:
            values = values[..., 0]
        if values.ndim != expected_ndim:
            raise ValueError(f"predictions for {name} have shape {values.shape}")
        columns[name] = values
    return columns


def predictions_frame(
    batches: Iterable[dict], predictions: Iterable[object], per_segment: bool,
    targets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Rows of the scorer's layout from evaluation batches and the predictions made on them.

    Continuous batches give `id, timestamp, prediction_<target>...` with one row per real
    (masked) step; topic batches give `id, segment_id, prediction_<target>...` (int classes).
    Rows are sorted by the key columns. `per_segment`: the task's (`muse.tasks.Task`).
    """
    frames = []
    for batch, prediction in zip(batches, predictions, strict=True):
        segments = per_segment
        columns = _per_target(prediction, targets, segments)
        video_id = _numpy(batch["video_id"])
        if segments:
            frame = {"id": video_id, "segment_id": _numpy(batch["segment_id"])}
            frame |= {f"prediction_{k}": v.astype(np.int64) for k, v in columns.items()}
        else:
            mask = _numpy(batch["mask"]).astype(bool)
            frame = {
                "id": np.broadcast_to(video_id[:, None], mask.shape)[mask],
                "timestamp": _numpy(batch["timestamp"])[mask],
            }
            frame |= {f"prediction_{k}": v[mask] for k, v in columns.items()}
        frames.append(pd.DataFrame(frame))
    if not frames:
        raise ValueError("no batches to turn into predictions")
    keys = ["id", "segment_id"] if per_segment else ["id", "timestamp"]
    return pd.concat(frames).sort_values(keys).reset_index(drop=True)
