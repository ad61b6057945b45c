"""Learning-rate schedules stepped once per optimizer step, sized by the length of the run.

`MuseModule.configure_optimizers` builds a scheduler node with `interval: step` by calling its
partial with the optimizer and `total_steps` (Lightning's estimate of the fit's optimizer
steps), so a schedule can be written as a fraction of the run instead of a step count that
would change with the data, the batch size and the number of epochs.
"""

from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_linear_schedule_with_warmup


def linear_warmup(optimizer: Optimizer, total_steps: float, warmup_fraction: float) -> LambdaLR:
    """Linear rise from 0 over the first `warmup_fraction` of all steps, then linear decay to 0.

    The schedule of the Hugging Face fine-tuning examples (and of the paper's ALBERT, with a
    fraction of 0.06); the warm-up is rounded up to whole steps as their `warmup_ratio` is.
    """
    if not math.isfinite(total_steps) or total_steps < 1:
        raise ValueError(f"a warm-up schedule needs a finite number of training steps, got "
                         f"{total_steps}: set trainer.max_epochs or trainer.max_steps")
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    total = int(total_steps)
    return get_linear_schedule_with_warmup(optimizer, math.ceil(warmup_fraction * total), total)
