"""A dataset of ready-made batches, so a benchmark's reference loop does no data work at all."""

from __future__ import annotations

import torch


class Batches(torch.utils.data.Dataset):
    """Ready-made batches: a `DataLoader(..., batch_size=None)` hands them out as they are."""

    def __init__(self, batches: list[dict]) -> None:
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict:
        return self.batches[index]
