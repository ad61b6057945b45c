"""The paper's early-fusion LSTM + self-attention baseline (section 5.1).

Two parallel bidirectional single-layer LSTMs read the fused feature sequence, one producing
queries and one producing values (their two directions summed, as Keras' `merge_mode="sum"`).
Every query attends, by plain dot product, over the values of the whole window, which also
serve as keys; the output of each step is concat(query, attended). Wild and trust keep one
vector per step; topic max-pools the real steps of a segment into one vector.

Padding never reaches a real step: the LSTMs read packed sequences, padded steps are left out
of the attention, and max-pooling only sees real steps. The batch mask must therefore be a
prefix mask (the real steps first), as the collate functions of `muse.data.datasets` make it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from muse.models.noise import training_noise

POOLINGS = (None, "max")


class LSTMSelfAttention(nn.Module):
    """Encoder: batch dict -> (B, T, output_dim) per step, or (B, output_dim) when pooled.

    Args:
        input_dim: width of the fused features.
        hidden_size: state size of each LSTM direction (the paper: 40).
        input_noise: std of the Gaussian noise added to the features in training only.
        pooling: None (per step, wild/trust) or "max" (global max over real steps, topic).
    """

    def __init__(
        self, input_dim: int, hidden_size: int = 40, input_noise: float = 0.1,
        pooling: str | None = None,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        self.hidden_size = hidden_size
        self.input_noise = input_noise
        self.pooling = pooling
        self.query = nn.LSTM(input_dim, hidden_size, batch_first=True, bidirectional=True)
        self.value = nn.LSTM(input_dim, hidden_size, batch_first=True, bidirectional=True)
        self.output_dim = 2 * hidden_size
        self.per_step = pooling is None

    def _encode(self, lstm: nn.LSTM, packed, steps: int) -> Tensor:
        out, _ = pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=steps)
        # (B, T, 2 * H) -> sum of the forward and backward directions, (B, T, H)
        return out.unflatten(-1, (2, self.hidden_size)).sum(dim=-2)

    def forward(self, batch: dict) -> Tensor:
        features, mask = batch["features"], batch["mask"].to(torch.bool)
        steps = features.shape[1]
        lengths = mask.sum(dim=1)
        if not torch.equal(mask, torch.arange(steps, device=mask.device) < lengths[:, None]):
            raise ValueError("the mask must mark the real steps first, then the padding")
        features = training_noise(features, self.input_noise, self.training)
        # An empty item (a segment without rows) is read as one padding step; it is masked below.
        packed = pack_padded_sequence(
            features, lengths.clamp_min(1).cpu(), batch_first=True, enforce_sorted=False
        )
        query = self._encode(self.query, packed, steps)
        value = self._encode(self.value, packed, steps)
        scores = query @ value.transpose(1, 2)  # (B, T queries, T keys)
        # The dtype's lowest value rather than -inf: an empty item then gets a finite
        # (uniform) attention instead of NaNs that would reach the gradient.
        scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
        attended = scores.softmax(dim=-1) @ value
        encoded = torch.cat([query, attended], dim=-1)
        if self.pooling is None:
            return encoded
        pooled = encoded.masked_fill(~mask[..., None], float("-inf")).amax(dim=1)
        return torch.where(mask.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))
