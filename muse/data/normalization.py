"""Per-dimension standardisation of the features (and one mean and std of the raw audio),
fitted on train rows only.

The statistics come from the train partition alone, so devel and test never leak into them;
they are applied to each item as it is read, so the store (in memory or on disk) stays raw.
They are part of the trained model: `MuseDataModule.state_dict` puts them in every checkpoint
(as tensors, which weights-only loading accepts), and a datamodule rebuilt from a checkpoint
applies them instead of fitting new ones on whatever store it now reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from muse.store.reader import Audio, MemoryRows, StreamedRows


class Normalizer:
    """`(x - mean) / std` per feature dimension; a constant dimension keeps std 1."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(
        cls, rows: MemoryRows | StreamedRows | Audio, starts: Sequence[int],
        stops: Sequence[int],
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

    @property
    def dim(self) -> int:
        return int(self.mean.size)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The statistics as float32 tensors, the form a checkpoint keeps."""
        return {"mean": torch.from_numpy(self.mean.copy()),
                "std": torch.from_numpy(self.std.copy())}

    @classmethod
    def from_state(cls, state: Mapping[str, torch.Tensor]) -> Normalizer:
        return cls(torch.as_tensor(state["mean"]).numpy(), torch.as_tensor(state["std"]).numpy())

    def assign(self, other: Normalizer) -> None:
        """Take `other`'s statistics in place: the datasets holding this object follow."""
        self.mean, self.std = other.mean.copy(), other.std.copy()

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std
