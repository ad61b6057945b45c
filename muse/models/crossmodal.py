"""The transformer stack of the Multimodal Transformer (MulT, Tsai et al. 2019).

One stack serves both of MulT's uses: a *crossmodal* transformer, whose queries come from a
target modality and whose keys and values come from a source modality, and the *memory*
transformer, plain self-attention over one modality's crossmodal outputs. As in MulT:

* the inputs (queries, and keys/values when they are another sequence) are scaled by
  sqrt(dim), get sinusoidal position embeddings (positions 1, 2, ... of their own sequence, so
  two modalities of different lengths each count their own steps) and embedding dropout;
* every layer is pre-norm: LayerNorm -> attention (the same LayerNorm normalises the source)
  -> residual dropout -> residual; LayerNorm -> Linear(dim, 4 dim) -> ReLU -> ReLU dropout ->
  Linear(4 dim, dim) -> residual dropout -> residual;
* a final LayerNorm closes the stack.

Padding is masked as keys (`key_padding_mask`), so a padded step never reaches a real one; the
outputs at padded query steps are meaningless and left for the caller to ignore. An item whose
keys are all padding (a segment without rows in the source modality) attends to nothing: its
attention output is zero, so the residual carries the queries through unchanged, and nothing
in it is NaN.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

FF_EXPANSION = 4  # MulT's feed-forward width is 4 x the model width


def sinusoidal_positions(steps: int, dim: int, device: torch.device | None = None) -> Tensor:
    """(steps, dim) embeddings of positions 1..steps: sines in the first half, cosines in the
    second, frequencies falling geometrically to 1/10000 (a zero column when `dim` is odd)."""
    half = dim // 2
    rate = math.log(10000.0) / max(half - 1, 1)
    frequencies = torch.exp(-rate * torch.arange(half, dtype=torch.float32, device=device))
    angles = torch.arange(1, steps + 1, dtype=torch.float32, device=device)[:, None] * frequencies
    table = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(table, (0, dim - 2 * half))


class TransformerLayer(nn.Module):
    """One pre-norm attention + feed-forward layer; attends over `source` or over `x` itself."""

    def __init__(self, dim: int, heads: int, attn_dropout: float, relu_dropout: float,
                 res_dropout: float) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, heads, dropout=attn_dropout, batch_first=True)
        self.attention_norm = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, FF_EXPANSION * dim), nn.ReLU(), nn.Dropout(relu_dropout),
            nn.Linear(FF_EXPANSION * dim, dim),
        )
        self.feed_forward_norm = nn.LayerNorm(dim)
        self.res_dropout = nn.Dropout(res_dropout)

    def forward(self, x: Tensor, key_padding: Tensor, source: Tensor | None = None) -> Tensor:
        """x (B, Lq, dim); source (B, Lk, dim) or None (self-attention); key_padding (B, Lk)
        True on padding."""
        query = self.attention_norm(x)
        keys = query if source is None else self.attention_norm(source)
        # Without a single real key softmax has nothing to normalise over: such an item attends
        # over its padding (finite, harmless) and its result is replaced by zero below.
        empty = key_padding.all(dim=1)
        attended, _ = self.attention(query, keys, keys, need_weights=False,
                                     key_padding_mask=key_padding & ~empty[:, None])
        attended = attended.masked_fill(empty[:, None, None], 0.0)
        x = x + self.res_dropout(attended)
        return x + self.res_dropout(self.feed_forward(self.feed_forward_norm(x)))


class TransformerStack(nn.Module):
    """`layers` TransformerLayers with MulT's input embedding and a final LayerNorm.

    Args:
        dim: model width (queries, keys and values all have it).
        heads: attention heads (must divide `dim`).
        layers: number of layers.
        attn_dropout, relu_dropout, res_dropout, embed_dropout: MulT's four dropouts.
    """

    def __init__(self, dim: int, heads: int, layers: int, attn_dropout: float = 0.1,
                 relu_dropout: float = 0.1, res_dropout: float = 0.1,
                 embed_dropout: float = 0.25) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"{heads} attention heads do not divide the width {dim}")
        if layers < 1:
            raise ValueError(f"a transformer needs at least one layer, got {layers}")
        self.dim = dim
        self.layers = nn.ModuleList(
            TransformerLayer(dim, heads, attn_dropout, relu_dropout, res_dropout)
            for _ in range(layers)
        )
        self.embed_dropout = nn.Dropout(embed_dropout)
        self.norm = nn.LayerNorm(dim)

    def _embed(self, x: Tensor) -> Tensor:
        positions = sinusoidal_positions(x.shape[1], self.dim, x.device).to(x.dtype)
        return self.embed_dropout(math.sqrt(self.dim) * x + positions)

    def forward(self, x: Tensor, key_padding: Tensor, source: Tensor | None = None) -> Tensor:
        """(B, Lq, dim) outputs for the queries `x` (B, Lq, dim).

        With `source` (B, Lk, dim), a crossmodal stack and `key_padding` (B, Lk) marks the
        source's padding; without, self-attention over `x` and `key_padding` (B, Lq) marks its.
        """
        x = self._embed(x)
        keys = None if source is None else self._embed(source)
        for layer in self.layers:
            x = layer(x, key_padding, keys)
        return self.norm(x)
