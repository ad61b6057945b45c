"""The End2You baseline (the paper's section 5.2): a raw-audio CNN per label step + an LSTM.

Each 250 ms step's raw audio (2000 samples at 8 kHz) goes through three convolution blocks,
conv(50, k8) + max-pool 10, conv(125, k8) + max-pool 8, conv(250, k6) + max-pool 6, each
followed by dropout 0.5; the flattened result is concatenated with the step's other features
(VGGface and fastText in the paper, zero where the package has none) and one LSTM layer of
256 units reads the sequence. The heads (with `output_activation: tanh` in the model config)
give one value per step and target.

The challenge paper names the filter and pool sizes only. The convolutions pad (k - 1) // 2
samples on each side, as End2You's audio models, so they keep the signal's length (one sample
less for even kernels), and a ReLU follows each one: without a non-linearity the three blocks
would collapse into one linear filter bank.

Padding never reaches a real step: the audio CNN sees each step on its own and the LSTM reads
packed sequences, so a padded step neither feeds a real one nor gets an output that counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from muse.models.noise import training_noise


class AudioCNN(nn.Module):
    """(N, samples) raw audio -> (N, output_dim): conv + ReLU + max-pool + dropout blocks."""

    def __init__(self, samples: int, channels: Sequence[int], kernels: Sequence[int],
                 pools: Sequence[int], dropout: float) -> None:
        super().__init__()
        if not len(channels) == len(kernels) == len(pools):
            raise ValueError("audio CNN: give as many channels as kernels and pools")
        blocks, previous = [], 1
        for width, kernel, pool in zip(channels, kernels, pools, strict=True):
            blocks += [nn.Conv1d(previous, width, kernel, padding=(kernel - 1) // 2), nn.ReLU(),
                       nn.MaxPool1d(pool), nn.Dropout(dropout)]
            previous = width
        self.blocks = nn.Sequential(*blocks)
        self.samples = samples
        try:
            with torch.no_grad():
                self.output_dim = self.blocks(torch.zeros(1, 1, samples)).numel()
        except RuntimeError as error:  # a pooling window longer than what is left of the step
            raise ValueError(f"audio CNN: {samples} samples per step are too few for pools "
                             f"{list(pools)}") from error

    def forward(self, audio: Tensor) -> Tensor:
        return self.blocks(audio.unsqueeze(1)).flatten(1)


class End2You(nn.Module):
    """Encoder: batch dict (`audio` (B, T, S), `features` (B, T, D), `mask`) -> (B, T, hidden).

    Args:
        input_dim: width of the other per-step features joining the audio (0: audio only).
        audio_samples: raw samples per label step (the harness fills it from the store).
        conv_channels, conv_kernels, pool_sizes: the audio CNN's blocks (the paper's default).
        dropout: after each audio block.
        hidden_size: units of the LSTM layer.
        input_noise: std of the Gaussian noise added to the other features in training only
            (0, the paper's: none; a default, so checkpoints saved without it still load).
    """

    per_step = True

    def __init__(
        self, input_dim: int, audio_samples: int,
        conv_channels: Sequence[int] = (50, 125, 250), conv_kernels: Sequence[int] = (8, 8, 6),
        pool_sizes: Sequence[int] = (10, 8, 6), dropout: float = 0.5, hidden_size: int = 256,
        input_noise: float = 0.0,
    ) -> None:
        super().__init__()
        if not audio_samples:
            raise ValueError("End2You reads raw audio: prepare the store with audio "
                             "and set model.audio=true")
        self.audio_cnn = AudioCNN(audio_samples, conv_channels, conv_kernels, pool_sizes,
                                  dropout)
        self.lstm = nn.LSTM(self.audio_cnn.output_dim + input_dim, hidden_size,
                            batch_first=True)
        self.input_noise = input_noise
        self.output_dim = hidden_size

    def forward(self, batch: dict) -> Tensor:
        if "audio" not in batch:
            raise ValueError("End2You needs the batch's raw `audio`: set data.audio=true")
        audio, mask = batch["audio"], batch["mask"].to(torch.bool)
        steps = audio.shape[1]
        heard = self.audio_cnn(audio.flatten(0, 1)).unflatten(0, audio.shape[:2])
        features = training_noise(batch["features"].to(heard.dtype), self.input_noise,
                                  self.training)
        inputs = torch.cat([heard, features], dim=-1)
        lengths = mask.sum(dim=1).clamp_min(1).cpu()  # an empty item reads one padded step
        packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        encoded, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                         total_length=steps)
        return encoded
