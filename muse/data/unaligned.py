"""Topic segments from the unaligned tables: every feature set at its own rows and length.

With `alignment="unaligned"`, a MuSe-Topic item is not one fused row table cut at a segment's
aligned steps but, per chosen feature set, that set's own rows from `unaligned/<name>/` (its
own timestamps: 250 ms steps for eGeMAPS, 10 ms for the LLDs, one row per word for fastText,
frames with a face for VGGface and the AUs). A row belongs to the segment whose id it carries
(`muse prepare` stores the package's `segment_id` column with every unaligned row) in the same
video. Each set keeps the first `lengths[name]` rows of the segment (longer segments are
cropped); the collate function pads every set to the longest item of the batch, and the
padding is masked, so a model sees exactly the kept rows.

Batches (`collate_unaligned`): `modalities` {name: (B, L_name, D_name) float32},
`modality_masks` {name: (B, L_name) bool, real rows first}, `labels` (B, n) int64 (-1 =
missing), `video_id` (B,), `segment_id` (B,) int64, `text` list[str]. There is no fused
`features`/`mask`: the feature sets have no common time axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from muse.data.datasets import _mask, _pad
from muse.data.normalization import Normalizer
from muse.store.reader import MemoryRows, Store, StreamedRows
from muse.tasks import ALL_PARTITIONS

UNALIGNED = "unaligned"


def unaligned_table(name: str) -> str:
    """The store's row table of an unaligned feature set."""
    return f"{UNALIGNED}/{name}"


@dataclass(frozen=True)
class SegmentRows:
    """Rows of one table grouped by segment: segment `s` owns `index[offsets[s]:offsets[s+1]]`
    (row numbers, in table order)."""

    index: np.ndarray
    offsets: np.ndarray


def group_by_segment(
    row_video: np.ndarray, row_segment: np.ndarray, segment_video: np.ndarray,
    segment_ids: np.ndarray,
) -> SegmentRows:
    """Match each row's (video, segment id) to the stored segments; rows of no stored segment
    (e.g. a segment without labels) belong to none."""
    low = min(row_segment.min(initial=0), segment_ids.min(initial=0))
    span = max(row_segment.max(initial=0), segment_ids.max(initial=0)) - low + 1
    segment_keys = segment_video * span + (segment_ids - low)
    row_keys = row_video * span + (row_segment - low)
    order = np.argsort(segment_keys, kind="stable")
    found = np.searchsorted(segment_keys[order], row_keys).clip(max=max(len(order) - 1, 0))
    matched = (segment_keys[order][found] == row_keys) if len(order) else np.zeros(
        len(row_keys), dtype=bool)
    rows = np.flatnonzero(matched)
    owner = order[found[matched]]
    by_segment = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=len(segment_ids))
    return SegmentRows(rows[by_segment], np.concatenate([[0], np.cumsum(counts)]))


@dataclass
class Stream:
    """One feature set of the items: its rows, their grouping, its length and normaliser."""

    rows: MemoryRows | StreamedRows
    segments: SegmentRows
    length: int
    normalizer: Normalizer | None = None

    def read(self, segment: int) -> np.ndarray:
        """The segment's first `length` rows, (n, D) float32; (0, D) when it has none."""
        index = self.segments.index[
            self.segments.offsets[segment]:self.segments.offsets[segment + 1]][: self.length]
        if not len(index):
            return np.zeros((0, self.rows.dim), dtype=np.float32)
        block = self.rows.read(int(index[0]), int(index[-1]) + 1)
        if len(block) != len(index):  # rows of other segments in between: keep the segment's
            block = block[index - index[0]]
        return block if self.normalizer is None else self.normalizer(block)


class UnalignedSegmentDataset(Dataset):
    """Topic segments, each feature set read from its own unaligned table."""

    def __init__(
        self, segments: np.ndarray, streams: Mapping[str, Stream], labels: np.ndarray,
        video_ids: np.ndarray, segment_ids: np.ndarray, texts: np.ndarray,
    ) -> None:
        self.segments = np.asarray(segments, dtype=np.int64)  # indices into the segment arrays
        self.streams = dict(streams)
        self.labels = labels  # (S, n_targets) int64
        self.video_ids = video_ids  # (S,) the video id of each segment
        self.segment_ids = segment_ids
        self.texts = texts

    def __len__(self) -> int:
        return len(self.segments)

    def __getitem__(self, index: int) -> dict:
        segment = int(self.segments[index])
        return {
            "modalities": {name: stream.read(segment) for name, stream in self.streams.items()},
            "labels": self.labels[segment],
            "video_id": self.video_ids[segment],
            "segment_id": self.segment_ids[segment],
            "text": str(self.texts[segment]),
        }


def unaligned_segments(
    store: Store, features: Sequence[str], lengths: Mapping[str, int], targets: Sequence[str],
    normalize: bool, saved: Mapping[str, Normalizer] | None = None,
) -> dict[str, UnalignedSegmentDataset]:
    """{partition: dataset} over every segment of the store; `lengths` {feature set: rows}.

    With `normalize`, each feature set is standardised with its own train rows' statistics,
    or with `saved` ones (a checkpoint's) where given.
    """
    saved = saved or {}
    video_of_segment = store.segment_videos()
    segment_ids = store.read("segments/segment_id")
    train = store.videos("train")
    streams = {}
    for name in features:
        table = unaligned_table(name)
        store.feature_dims(table, [name])  # a clear StoreError for a missing table
        video_offsets = store.read(f"{table}/video_offsets")
        row_video = np.repeat(np.arange(len(video_offsets) - 1), np.diff(video_offsets))
        grouped = group_by_segment(row_video, store.read(f"{table}/segment_id"),
                                   video_of_segment, segment_ids)
        rows = store.rows(table, [name])
        normalizer = None
        if normalize:
            normalizer = saved.get(name) or Normalizer.fit(rows, video_offsets[train],
                                                           video_offsets[train + 1])
        streams[name] = Stream(rows, grouped, int(lengths[name]), normalizer)
    labels = np.stack([store.read(f"segments/labels/{t}") for t in targets], axis=1)
    shared = dict(streams=streams, labels=labels.astype(np.int64),
                  video_ids=store.video_ids[video_of_segment], segment_ids=segment_ids,
                  texts=store.read("segments/text"))
    return {
        partition: UnalignedSegmentDataset(
            np.flatnonzero(np.isin(video_of_segment, store.videos(partition))), **shared)
        for partition in ALL_PARTITIONS
    }


def collate_unaligned(items: Sequence[dict]) -> dict:
    """Pad every feature set to its longest item in the batch (at least one row, masked)."""
    modalities, masks = {}, {}
    for name in items[0]["modalities"]:
        arrays = [item["modalities"][name] for item in items]
        lengths = [len(array) for array in arrays]
        length = max(max(lengths), 1)
        modalities[name] = _pad(arrays, length, 0.0, np.float32)
        masks[name] = _mask(lengths, length)
    return {
        "modalities": modalities,
        "modality_masks": masks,
        "labels": torch.as_tensor(np.stack([i["labels"] for i in items]).astype(np.int64)),
        "video_id": torch.as_tensor(np.array([i["video_id"] for i in items], dtype=np.int64)),
        "segment_id": torch.as_tensor(np.array([i["segment_id"] for i in items], dtype=np.int64)),
        "text": [i["text"] for i in items],
    }
