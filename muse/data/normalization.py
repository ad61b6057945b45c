"""Per-dimension standardisation of the fused features, fitted on train rows only.

The statistics come from the train partition alone, so devel and test never leak into them;
they are applied to each item as it is read, so the store (in memory or on disk) stays raw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from muse.store.reader import MemoryRows, StreamedRows


class Normalizer:
    """`(x - mean) / std` per feature dimension; a constant dimension keeps std 1."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(
        cls, rows: MemoryRows | StreamedRows, starts: Sequence[int], stops: Sequence[int]
    ) -> Normalizer:
        """Mean and population std (ddof 0) over the row ranges `[starts[i], stops[i])`.

        Two passes in float64, one row range at a time, so a streamed store is never loaded
        whole and the result matches numpy's mean/std of the same rows.
        """
        ranges = [(int(a), int(b)) for a, b in zip(starts, stops, strict=True) if b > a]
        count = sum(b - a for a, b in ranges)
        if count == 0:
            raise ValueError("no train rows to fit the normalisation on")
        total = np.zeros(rows.dim, dtype=np.float64)
        for a, b in ranges:
            total += rows.read(a, b).sum(axis=0, dtype=np.float64)
        mean = total / count
        squares = np.zeros(rows.dim, dtype=np.float64)
        for a, b in ranges:
            squares += np.square(rows.read(a, b) - mean).sum(axis=0)
        std = np.sqrt(squares / count)
        std[std == 0] = 1.0
        return cls(mean, std)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std
