"""The Multimodal Transformer baseline of MuSe-Topic (MulT, Tsai et al. 2019; paper section 5.3).

Each feature set is one input stream ("modality"; the paper feeds three feature sets, of three
modalities or of two). Per stream, a 1x1 temporal convolution (no bias) projects the features
to `dim` (30) channels. For every ordered pair (target, source) a crossmodal transformer lets
the target's steps attend to the source's steps; a target's crossmodal outputs are concatenated
along the channels and read by that target's self-attention memory transformer. The memory's
last real step of every target is concatenated into one vector h of
modalities x (modalities - 1) x dim values, and `proj2(dropout(relu(proj1(h)))) + h` is the
encoding the heads turn into logits (MulT's residual output MLP).

Inputs come in one of two layouts, as the datamodule gives them:

* aligned (`egemaps_aligned`, `fasttext_aligned`): `features` (B, L, sum of widths), the feature
  sets concatenated in the order of `feature_dims`, with one `mask` (B, L) for all of them;
* unaligned: `modalities` {feature set: (B, L_set, width)} with `modality_masks`
  {feature set: (B, L_set)}, every set at its own length and sampling.

Padding is masked wherever it could be attended to, and "last real step" is read from the
mask, so the same item padded to any length encodes the same way (in eval mode). An item with
no row in some stream (a segment without any word, or without a face) stays finite: attending
to an empty source adds nothing, and an empty target contributes zeros to h.

MulT's causal attention mask (a switch of its reference code) is not used: the model reads
whole segments to classify them, so no step needs to be hidden from an earlier one. Nor is its
extra dropout on the language input before projection: no stream is special here, and every
stream still gets the embedding dropout of each transformer it enters.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muse.models.crossmodal import TransformerStack


def trim(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the trailing steps that are padding in every item (at least one step stays):
    they change nothing in the encoding, and attention costs grow with the square of the steps
    (a batch of segments padded to 220 rows is mostly padding)."""
    real = mask.any(dim=0).nonzero()
    steps = int(real.max()) + 1 if len(real) else 1
    return x[:, :steps], mask[:, :steps]


def last_real_step(x: Tensor, mask: Tensor) -> Tensor:
    """(B, D): each item's state at its last True mask step; zeros for an item without any."""
    steps = torch.arange(mask.shape[1], device=mask.device)
    last = torch.where(mask, steps, -1).amax(dim=1)
    picked = x[torch.arange(len(x), device=x.device), last.clamp_min(0)]
    return torch.where((last >= 0)[:, None], picked, torch.zeros_like(picked))


class MultimodalTransformer(nn.Module):
    """Encoder: batch dict -> (B, output_dim), output_dim = M (M - 1) dim for M streams.

    Args:
        input_dim: total width of the feature sets (checked against `feature_dims`).
        feature_dims: {feature set: width} of the streams, in the order of the fused
            `features` columns (the harness fills it from the data when the config leaves it
            null); two or more.
        dim: width every stream is projected to (MulT: 30).
        heads: attention heads of every transformer (the paper: 5).
        layers: layers of each crossmodal transformer (the paper: 5).
        memory_layers: layers of each self-attention memory transformer (None: `layers`).
        attn_dropout, relu_dropout, res_dropout, embed_dropout: MulT's transformer dropouts.
        out_dropout: dropout inside the residual output MLP.
    """

    per_step = False

    def __init__(
        self, input_dim: int, feature_dims: Mapping[str, int] | None = None, dim: int = 30,
        heads: int = 5, layers: int = 5, memory_layers: int | None = None,
        attn_dropout: float = 0.1, relu_dropout: float = 0.1, res_dropout: float = 0.1,
        embed_dropout: float = 0.25, out_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if feature_dims is None:
            raise ValueError("the Multimodal Transformer needs feature_dims ({feature set: "
                             "width}, one stream each); the training harness fills it in when "
                             "the model config leaves it null")
        self.feature_dims = {str(name): int(width) for name, width in feature_dims.items()}
        self.modalities = list(self.feature_dims)
        self.widths = list(self.feature_dims.values())
        if len(self.modalities) < 2:
            raise ValueError(f"the Multimodal Transformer fuses two or more feature sets, got "
                             f"{self.modalities}; choose features with 2 or 3 sets (e.g. ge_ft_v)")
        if sum(self.widths) != input_dim:
            raise ValueError(f"feature_dims {self.feature_dims} add up to {sum(self.widths)}, "
                             f"not the input width {input_dim}")
        stack = dict(heads=heads, attn_dropout=attn_dropout, relu_dropout=relu_dropout,
                     res_dropout=res_dropout, embed_dropout=embed_dropout)
        memory_dim = (len(self.modalities) - 1) * dim
        self.projections = nn.ModuleDict({
            name: nn.Conv1d(width, dim, kernel_size=1, bias=False)
            for name, width in zip(self.modalities, self.widths, strict=True)
        })
        self.crossmodal = nn.ModuleDict({
            target: nn.ModuleDict({
                source: TransformerStack(dim, layers=layers, **stack)
                for source in self.modalities if source != target
            })
            for target in self.modalities
        })
        self.memory = nn.ModuleDict({
            target: TransformerStack(memory_dim, layers=memory_layers or layers, **stack)
            for target in self.modalities
        })
        self.output_dim = len(self.modalities) * memory_dim
        self.proj1 = nn.Linear(self.output_dim, self.output_dim)
        self.proj2 = nn.Linear(self.output_dim, self.output_dim)
        self.out_dropout = nn.Dropout(out_dropout)

    def streams(self, batch: dict) -> dict[str, tuple[Tensor, Tensor]]:
        """{feature set: (features (B, L, width), mask (B, L) bool)} from either layout."""
        if "modalities" in batch:
            missing = [name for name in self.modalities if name not in batch["modalities"]]
            if missing:
                raise ValueError(f"the batch has no rows of {missing}; it has "
                                 f"{list(batch['modalities'])}")
            found = {name: (batch["modalities"][name], batch["modality_masks"][name].bool())
                     for name in self.modalities}
        else:
            features, mask = batch["features"], batch["mask"].bool()
            if features.shape[-1] != sum(self.widths):
                raise ValueError(f"features of width {features.shape[-1]}, but the model was "
                                 f"built for {self.feature_dims}")
            found = {name: (part, mask) for name, part in
                     zip(self.modalities, features.split(self.widths, dim=-1), strict=True)}
        for name, width in zip(self.modalities, self.widths, strict=True):
            if found[name][0].shape[-1] != width:
                raise ValueError(f"{name} rows have width {found[name][0].shape[-1]}, the model "
                                 f"was built for {width}")
        return {name: trim(x, mask) for name, (x, mask) in found.items()}

    def forward(self, batch: dict) -> Tensor:
        streams = self.streams(batch)
        projected = {name: self.projections[name](x.transpose(1, 2)).transpose(1, 2)
                     for name, (x, _) in streams.items()}
        padding = {name: ~mask for name, (_, mask) in streams.items()}
        last = []
        for target, sources in self.crossmodal.items():
            crossed = [stack(projected[target], padding[source], projected[source])
                       for source, stack in sources.items()]
            memory = self.memory[target](torch.cat(crossed, dim=-1), padding[target])
            last.append(last_real_step(memory, streams[target][1]))
        h = torch.cat(last, dim=-1)
        return self.proj2(self.out_dropout(F.relu(self.proj1(h)))) + h
