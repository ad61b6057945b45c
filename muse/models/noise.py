"""Gaussian input noise in training, the regulariser the LSTM and End2You share.

With few train videos and hundreds of standardised feature columns, the models memorise the
columns; noise of a fixed std on them, in training only, makes them rely on what is stable.
"""

from __future__ import annotations

import torch
from torch import Tensor


def training_noise(features: Tensor, std: float, training: bool) -> Tensor:
    """`features` plus Gaussian noise of `std` while training; unchanged otherwise."""
    if training and std > 0:
        return features + std * torch.randn_like(features)
    return features
