"""The CCC loss used by the continuous (Wild, Trust) baselines: 1 - CCC of the batch.

It uses Lin's textbook CCC (population moments, all divided by N), not the scorer's
N-1 / N mix: the textbook form reaches exactly 1 when predictions equal the labels, so the
loss has its minimum, 0, at the right place for any batch size, while the official mix caps a
batch of N at (N-1)/N and would make the attainable loss depend on how many steps are padded.
On the large partitions the scorer sees, the two differ by a factor of about 1 - 1/N.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# Keeps the ratio finite when both sides of a batch are constant and equal; far below any real
# label variance (labels lie in [-1, 1]), so it does not bias the loss of ordinary batches.
EPS = 1e-8


def ccc_loss(preds: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
    """1 - textbook CCC over every valid element of the batch (all shapes are flattened).

    Elements where `mask` is False (padding) or the target is NaN are left out by selection,
    not by multiplying with 0, so a NaN target never reaches the gradient. A batch without
    valid elements gives a zero loss that is still attached to the graph.
    """
    if preds.numel() != target.numel():
        raise ValueError(f"preds has {preds.numel()} elements, target {target.numel()}")
    preds, target = preds.reshape(-1), target.reshape(-1).to(preds.dtype)
    valid = ~torch.isnan(target)
    if mask is not None:
        valid &= mask.reshape(-1).to(torch.bool)
    y, x = preds[valid], target[valid]
    if y.numel() == 0:
        return preds.sum() * 0.0
    mean_x, mean_y = x.mean(), y.mean()
    dx, dy = x - mean_x, y - mean_y
    cov = (dx * dy).mean()
    denominator = (dx * dx).mean() + (dy * dy).mean() + (mean_x - mean_y) ** 2 + EPS
    return 1.0 - 2.0 * cov / denominator


class CCCLoss(nn.Module):
    """`ccc_loss` as a module, for configs that name a loss class."""

    def forward(self, preds: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        return ccc_loss(preds, target, mask)
