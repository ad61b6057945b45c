"""Whether this process is rank 0 of a multi-process run, known before any Trainer exists.

Under DDP every process runs `train.py` (Lightning re-runs the script for the other devices of
a machine; SLURM, torchrun or the user start one per device or node), and `train()` opens its
MLflow run before Lightning's Trainer, the one that knows the ranks, is built. The launchers
give each process its rank in the environment: LOCAL_RANK (Lightning, torchrun), NODE_RANK or
GROUP_RANK (the machine), RANK (torchrun), SLURM_PROCID (SLURM) and JSM_NAMESPACE_RANK (LSF).
Rank 0 is the process where each of those that is set is 0; Lightning reads the same variables.
"""

from __future__ import annotations

import os

RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID",
                  "JSM_NAMESPACE_RANK")


def is_global_zero() -> bool:
    """True in a single-process run and in the first process of a distributed one."""
    return all(int(os.environ.get(name) or 0) == 0 for name in RANK_VARIABLES)
