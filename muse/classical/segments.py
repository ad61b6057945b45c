"""Per-segment mean features of a MuSe-Topic store: the input of the classical baselines.

A segment's rows of the aligned table (`<table>/segment_offsets`: 250 ms steps of
`egemaps_aligned`, words of `fasttext_aligned`) are averaged column by column, the chosen
feature sets concatenated in the given order (early fusion, as for the neural models). A
segment without rows gets zeros, which is what the package itself writes for an absent modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from muse.data.datamodule import MuseDataModule
from muse.data.datasets import Rows
from muse.errors import MuseError


@dataclass(frozen=True)
class Segments:
    """Every segment of a store, in store order, with its keys, partition and labels."""

    features: np.ndarray  # (S, D) float64 means
    labels: dict[str, np.ndarray]  # target -> (S,) int64 classes, -1 = missing
    video_ids: np.ndarray  # (S,) int64
    segment_ids: np.ndarray  # (S,) int64
    partitions: np.ndarray  # (S,) str

    def indices(self, *partitions: str) -> np.ndarray:
        """The segments of the given partitions, in store order."""
        return np.flatnonzero(np.isin(self.partitions, partitions))

    def labelled(self, target: str, *partitions: str) -> np.ndarray:
        """The segments of the given partitions that have a `target` label."""
        rows = self.indices(*partitions)
        return rows[self.labels[target][rows] >= 0]


def segment_means(rows: Rows, offsets: np.ndarray) -> np.ndarray:
    """(S, D) column means of `rows[offsets[s]:offsets[s+1]]`; zeros for empty segments.

    `rows` is a store's `MemoryRows` or `StreamedRows`: one read per segment works for both,
    so features that exceed the memory budget are averaged straight from the file.
    """
    means = np.zeros((len(offsets) - 1, rows.dim))
    for segment, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
        if stop > start:
            means[segment] = rows.read(int(start), int(stop)).mean(axis=0, dtype=np.float64)
    return means


def load_segments(datamodule: MuseDataModule) -> Segments:
    """The segments of the datamodule's topic store, with its table, features and targets."""
    table = datamodule.table
    if table not in datamodule.spec.aligned:
        raise MuseError(f"data.alignment={table}: segment means are taken over the rows of one "
                        f"aligned table, {' or '.join(datamodule.spec.aligned)}")
    store = datamodule.store
    video_of_segment = store.segment_videos()
    segments = Segments(
        features=segment_means(store.rows(table, datamodule.features),
                               store.read(f"{table}/segment_offsets")),
        labels={t: store.read(f"segments/labels/{t}").astype(np.int64)
                for t in datamodule.targets},
        video_ids=store.video_ids[video_of_segment],
        segment_ids=store.read("segments/segment_id").astype(np.int64),
        partitions=np.asarray(store.partitions[video_of_segment], dtype=str),
    )
    store.close()
    return segments
