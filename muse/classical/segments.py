"""Per-segment mean features of a MuSe-Topic store: the input of the classical baselines.

A segment's rows of the aligned table (`<table>/segment_offsets`: 250 ms steps of
`egemaps_aligned`, words of `fasttext_aligned`) are averaged column by column, the chosen
feature sets concatenated in the given order (early fusion, as for the neural models). A
segment without rows gets zeros, which is what the package itself writes for an absent modality.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from muse.errors import MuseError, StoreError
from muse.store.reader import MemoryRows, Store, StreamedRows
from muse.tasks import TASKS


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


def segment_means(rows: MemoryRows | StreamedRows, offsets: np.ndarray) -> np.ndarray:
    """(S, D) column means of `rows[offsets[s]:offsets[s+1]]`; zeros for empty segments.

    `rows` is a store's `MemoryRows` or `StreamedRows`: one read per segment works for both,
    so features that exceed the memory budget are averaged straight from the file.
    """
    means = np.zeros((len(offsets) - 1, rows.dim))
    for segment, (start, stop) in enumerate(zip(offsets[:-1], offsets[1:], strict=True)):
        if stop > start:
            means[segment] = rows.read(int(start), int(stop)).mean(axis=0, dtype=np.float64)
    return means


def load_segments(store: Store, features: list[str], table: str | None = None,
                  targets: list[str] | None = None) -> Segments:
    """The segments of a topic store: the means of `features` over the rows of `table` (the
    task's first aligned table by default), the labels of `targets` (default: all the store's).
    """
    aligned = TASKS[store.task].aligned
    table = table or aligned[0]
    if table not in aligned:
        raise MuseError(f"data.alignment={table}: segment means are taken over the rows of one "
                        f"aligned table, {' or '.join(aligned)}")
    targets = list(store.targets if targets is None else targets)
    missing = [t for t in targets if t not in store.targets]
    if missing:
        raise StoreError(f"{store.path}: no target {', '.join(missing)}; "
                         f"the store has: {', '.join(store.targets)}")
    video_of_segment = store.segment_videos()
    segments = Segments(
        features=segment_means(store.rows(table, features),
                               store.read(f"{table}/segment_offsets")),
        labels={t: store.read(f"segments/labels/{t}").astype(np.int64) for t in targets},
        video_ids=store.video_ids[video_of_segment],
        segment_ids=store.read("segments/segment_id").astype(np.int64),
        partitions=np.asarray(store.partitions[video_of_segment], dtype=str),
    )
    store.close()
    return segments
