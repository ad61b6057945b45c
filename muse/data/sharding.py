"""Each process's share of a devel/test partition when a run trains on several processes (DDP).

Lightning splits evaluation loaders with a `DistributedSampler` that pads the partition to a
multiple of the process count by repeating items, so a few windows or segments would be scored
twice and the devel metrics would differ from a single-process run. Lightning's
`UnrepeatedDistributedSampler` (the one it uses for `predict`) gives process r the items
r, r + n, r + 2n, ... and nothing more: every item is scored exactly once across processes, and
the streaming metrics, whose states are summed across processes, equal the single-process ones.
Lightning leaves a loader alone that already has a `DistributedSampler`, so handing it this
one is all it takes; training loaders keep Lightning's own (shuffled, padded) sampler.
"""

from __future__ import annotations

from collections.abc import Sized

from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler

from muse.errors import MuseError


def evaluation_sampler(dataset: Sized, world_size: int, rank: int,
                       partition: str) -> UnrepeatedDistributedSampler | None:
    """Process `rank`'s items of an evaluation partition (None on a single process).

    Every process must run at least one batch (the metrics are synced at the epoch end and
    DDP may sync buffers on the first forward), so a partition with fewer items than
    processes is refused.
    """
    if world_size < 2:
        return None
    if len(dataset) < world_size:
        raise MuseError(
            f"the {partition} partition has {len(dataset)} evaluation items, fewer than the "
            f"{world_size} processes that share it: use fewer devices or shorter evaluation "
            "chunks (data.eval_window)")
    return UnrepeatedDistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                        shuffle=False)
