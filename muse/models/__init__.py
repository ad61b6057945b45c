"""Encoders of the baselines (one file each) and the per-target output heads.

Every encoder takes `input_dim` (the fused feature width, which it may ignore), reads the batch
dict in `forward(batch)`, and exposes `output_dim` and `per_step` (True: (B, T, output_dim),
False: pooled to (B, output_dim)).
"""

from muse.models.heads import Heads
from muse.models.lstm_attention import LSTMSelfAttention

__all__ = ["Heads", "LSTMSelfAttention"]
