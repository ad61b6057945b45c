"""Latent curves of one video: noiseless and gold labels, nuisances and face visibility.

All curves live on the 250 ms label steps. Arousal and valence are slow noise (a 3 s and a
15 s component) plus a speaker/video offset and a per-segment offset, squashed into [-1, 1] by
tanh. Trustworthiness is tanh(0.8 valence + 0.5 arousal + 0.3 own slow component). Gold
labels are the noiseless curves plus smooth annotation noise, clipped to [-1, 1] and rounded
as written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from muse.package.synthetic.plan import VideoPlan
from muse.package.synthetic.seeds import stream

TARGETS = ("arousal", "valence", "trustworthiness")
LABEL_DECIMALS = 4
FACE_RUN_STEPS = {True: 40, False: 16}  # mean run length with / without a face (10 s / 4 s)


@dataclass(frozen=True)
class VideoSignals:
    """Per-step curves of one video; `clean` and `gold` are keyed by target name."""

    clean: dict[str, np.ndarray]
    gold: dict[str, np.ndarray]
    trust_own: np.ndarray  # trustworthiness' own component, unit scale: vision sees it weakly
    nuisance: np.ndarray  # (steps, 2) recording conditions that audio features mix in
    face: np.ndarray  # bool per step: a face is visible


def smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Unit-variance Gaussian noise low-passed by a Gaussian kernel of `sigma` steps."""
    # The kernel's squared weights sum to 1 / (2 sqrt(pi) sigma): undo that variance loss.
    gain = np.sqrt(2.0 * np.sqrt(np.pi) * sigma)
    return gaussian_filter1d(rng.standard_normal(n), sigma) * gain


def simulate(video: VideoPlan, seed: int) -> VideoSignals:
    rng = stream(seed, video.video_id, "signals")
    n = video.n_steps
    segment_index = video.step_segment_ids() - 1
    arousal = _emotion(rng, n, segment_index, len(video.segments))
    valence = _emotion(rng, n, segment_index, len(video.segments))
    trust_own = rng.normal(0.0, 0.5) + smooth_noise(rng, n, 40)
    trust = np.tanh(0.8 * valence + 0.5 * arousal + 0.3 * trust_own)
    clean = {"arousal": arousal, "valence": valence, "trustworthiness": trust}
    gold = {name: _annotate(rng, curve) for name, curve in clean.items()}
    # Recording conditions (microphone, room) stay put within a video. Were they slow curves,
    # they would correlate by chance with the slow valence of short videos.
    nuisance = np.tile(rng.standard_normal(2), (n, 1))
    return VideoSignals(clean, gold, trust_own, nuisance, _face_visibility(rng, n))


def _emotion(rng: np.random.Generator, n: int, segment_index: np.ndarray,
             n_segments: int) -> np.ndarray:
    video_offset = rng.normal(0.0, 0.25)
    # Segments shift the level (a topic can be exciting or dull); softened over about 1 s.
    segment_offset = gaussian_filter1d(rng.normal(0.0, 0.3, n_segments)[segment_index], 4.0)
    fast, slow = smooth_noise(rng, n, 12), smooth_noise(rng, n, 60)
    return np.tanh(video_offset + segment_offset + 0.5 * fast + 0.3 * slow)


def _annotate(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    """The gold label: what annotators agree on, a smooth and a small fast error away."""
    noisy = clean + 0.1 * smooth_noise(rng, clean.size, 8) + 0.03 * rng.standard_normal(clean.size)
    # + 0.0 turns -0.0 into 0.0 so no file shows "-0.0000"
    return np.round(np.clip(noisy, -1.0, 1.0), LABEL_DECIMALS) + 0.0


def _face_visibility(rng: np.random.Generator, n: int) -> np.ndarray:
    """An on/off Markov chain: runs of geometric length alternate between face and no face."""
    visible = np.empty(n, dtype=bool)
    state, start = bool(rng.random() < 0.7), 0
    while start < n:
        stop = start + int(rng.geometric(1.0 / FACE_RUN_STEPS[state]))
        visible[start:stop] = state
        state, start = not state, stop
    return visible
