"""Streaming versions of the official metrics for Lightning (torchmetrics `Metric`s).

The challenge scores a whole partition at once, so averaging per-batch or per-process values
would be wrong: CCC and UAR are not means of their parts. These metrics instead keep sufficient
statistics (float64 moment sums, an int64 confusion matrix) whose cross-process reduction is
a plain sum, and compute the exact partition-level metric from them. They agree with
`muse.metrics.functional` (unrounded) to float64 round-off.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric

from muse.metrics.functional import F1_WEIGHT, UAR_WEIGHT

_SUMS = ("n", "sx", "sy", "sxx", "syy", "sxy")


def _valid(target: Tensor, mask: Tensor | None) -> Tensor:
    """Positions to score: inside the mask (padding excluded) and with a known target."""
    if target.is_floating_point():
        valid = ~torch.isnan(target)
    else:
        valid = torch.ones_like(target, dtype=torch.bool)
    if mask is not None:
        mask = mask.to(torch.bool)
        # A (batch, time) mask also fits a (batch, time, 1) target.
        if mask.numel() == target.numel():
            mask = mask.reshape(target.shape)
        valid &= mask.broadcast_to(target.shape)
    return valid


class StreamingCCC(Metric):
    """CCC over every valid position seen since the last reset, on any number of processes.

    `update(preds, target, mask=None)` takes tensors of any shape with equal element counts.
    NaN targets and positions where `mask` is False are skipped. NaN predictions at valid
    positions are not: they make the result NaN, so a diverged model cannot look healthy.
    `textbook=True` switches from the official moment mix to Lin's population CCC.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, textbook: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.textbook = textbook
        for name in _SUMS:
            self.add_state(name, torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        # Exact extremes tell a constant side apart from the round-off of the raw-sum
        # variance (sxx - sx^2/n is rarely exactly 0), so constant predictions score exactly 0.
        for side in ("x", "y"):
            self.add_state(f"{side}_min", torch.tensor(math.inf, dtype=torch.float64), "min")
            self.add_state(f"{side}_max", torch.tensor(-math.inf, dtype=torch.float64), "max")

    def update(self, preds: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        if preds.numel() != target.numel():
            raise ValueError(f"preds has {preds.numel()} elements, target {target.numel()}")
        valid = _valid(target, mask).reshape(-1)
        x = target.reshape(-1)[valid].to(torch.float64)
        y = preds.detach().reshape(-1)[valid].to(torch.float64)
        if x.numel() == 0:
            return
        self.n += x.numel()
        self.sx += x.sum()
        self.sy += y.sum()
        self.sxx += (x * x).sum()
        self.syy += (y * y).sum()
        self.sxy += (x * y).sum()
        self.x_min = torch.minimum(self.x_min, x.min())
        self.x_max = torch.maximum(self.x_max, x.max())
        self.y_min = torch.minimum(self.y_min, y.min())
        self.y_max = torch.maximum(self.y_max, y.max())

    def compute(self) -> Tensor:
        n = self.n
        zero = torch.zeros((), dtype=torch.float64, device=n.device)
        if n < 2 or self.x_min == self.x_max or self.y_min == self.y_max:
            return zero
        # Centred sums of squares and products from the raw sums.
        cxx = (self.sxx - self.sx * self.sx / n).clamp_min(0)
        cyy = (self.syy - self.sy * self.sy / n).clamp_min(0)
        cxy = self.sxy - self.sx * self.sy / n
        var_divisor = n if self.textbook else n - 1
        mean_gap = (self.sx - self.sy) / n
        denominator = (cxx + cyy) / var_divisor + mean_gap * mean_gap
        return torch.where(denominator > 0, 2 * (cxy / n) / denominator, zero)


class StreamingClassification(Metric):
    """Micro-F1, UAR and the 0.66/0.34 Topic score over a whole partition.

    `update(preds, target, mask=None)`: `preds` are class ids shaped like `target`, or scores
    with one extra trailing class dimension (argmax is taken). Masked positions and NaN targets
    (for float targets) are skipped. `compute()` returns a dict of float64 tensors
    `{"f1", "uar", "score"}` in percent, unrounded, with the class set of
    `functional.uar` (classes seen in targets or predictions).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        self.num_classes = num_classes
        self.add_state(
            "confusion", torch.zeros(num_classes, num_classes, dtype=torch.int64),
            dist_reduce_fx="sum",
        )

    def update(self, preds: Tensor, target: Tensor, mask: Tensor | None = None) -> None:
        if preds.dim() == target.dim() + 1:
            preds = preds.argmax(dim=-1)
        if preds.shape != target.shape:
            raise ValueError(f"preds {tuple(preds.shape)} do not fit target {tuple(target.shape)}")
        valid = _valid(target, mask)
        truth, guess = target[valid], preds[valid]
        # An out-of-range or fractional id would land silently in a wrong confusion cell.
        for name, ids in (("target", truth), ("preds", guess)):
            if ids.is_floating_point() and (ids % 1 != 0).any():
                raise ValueError(f"{name} holds non-integer class ids")
            if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise ValueError(f"{name} holds class ids outside 0..{self.num_classes - 1}")
        cells = truth.to(torch.int64) * self.num_classes + guess.to(torch.int64)
        counts = torch.bincount(cells, minlength=self.num_classes**2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes)

    def compute(self) -> dict[str, Tensor]:
        confusion = self.confusion.to(torch.float64)
        support = confusion.sum(dim=1)
        predicted = confusion.sum(dim=0)
        hits = confusion.diagonal()
        present = (support > 0) | (predicted > 0)
        total = support.sum()
        zero = torch.zeros((), dtype=torch.float64, device=confusion.device)
        recall = torch.where(support > 0, hits / support.clamp_min(1), torch.zeros_like(hits))
        uar = 100 * recall[present].sum() / present.sum() if present.any() else zero
        f1 = 100 * hits.sum() / total if total > 0 else zero
        return {"f1": f1, "uar": uar, "score": F1_WEIGHT * f1 + UAR_WEIGHT * uar}
