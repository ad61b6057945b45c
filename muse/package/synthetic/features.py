"""Feature matrices of one video, with the signal planted where it lives in the real data.

* Audio (egemaps, deepspectrum per step; lld per 10 ms frame): a fixed random projection of
  [arousal + a little smooth noise, two per-video recording conditions] plus per-cell noise.
* Vision: a fixed projection of weak valence / arousal / own-trust channels, each buried in
  smooth noise of its own, plus a per-video identity offset and per-cell noise. The face sets
  are all-zero rows while no face is visible; the scene sets (xception, gocar) never are.
* Text (fasttext): the vector of the word spoken at each step's centre, zeros in silence.

A projection is seeded by the feature name only: it is the "extractor", the same in every
package. The noise is seeded by (seed, video, feature name). The unit-scale mixture of each
column then becomes a descriptor with the real set's magnitudes (`descriptors`: jitter about
0.02, formants in Hz, landmarks in pixels, ReLU-sparse CNN embeddings, probabilities, ...), and
gets a handful of NaN cells (Poisson, mean 1 per video and set) - never in a no-face row or in
text.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from muse.package.layout import FEATURE_SETS, STEP_MS
from muse.package.synthetic.descriptors import columns
from muse.package.synthetic.plan import VideoPlan
from muse.package.synthetic.seeds import stream
from muse.package.synthetic.signals import VideoSignals, smooth_noise
from muse.package.synthetic.text import Transcript

LLD_HOP_MS = 10
FRAMES_PER_STEP = STEP_MS // LLD_HOP_MS
SCENE_SETS = frozenset({"xception", "gocar"})  # whole-frame vision: present without a face
AUDIO_NOISE = {"egemaps": 0.5, "deepspectrum": 1.0, "lld": 2.0}  # lld frames are noisiest
AROUSAL_JITTER = 0.4  # smooth noise on the arousal audio hears
VISION_WEIGHT = 0.4  # of each affect channel against unit smooth noise: weak on purpose
VISION_NOISE = 0.5
IDENTITY_SCALE = 0.8
NAN_PER_VIDEO = 1.0


def shows_face(name: str) -> bool:
    """Face sets have rows only while a face is visible (zero rows in aligned files)."""
    return FEATURE_SETS[name].modality == "vision" and name not in SCENE_SETS


def step_features(name: str, video: VideoPlan, signals: VideoSignals, transcript: Transcript,
                  seed: int) -> np.ndarray:
    """The (steps, dim) matrix of a per-step feature set (every set but lld)."""
    modality = FEATURE_SETS[name].modality
    if modality == "text":
        vectors = np.vstack([transcript.vectors(), np.zeros((1, FEATURE_SETS[name].dim))])
        return vectors[transcript.step_words(video.n_steps)]  # index -1 is the zero row
    rng = stream(seed, video.video_id, name)
    if modality == "audio":
        values = _mix(name, _audio_drivers(rng, signals), AUDIO_NOISE[name], rng)
    else:
        identity = IDENTITY_SCALE * rng.standard_normal(FEATURE_SETS[name].dim)
        values = _mix(name, _vision_drivers(rng, signals), VISION_NOISE, rng, identity)
    visible = signals.face if shows_face(name) else np.ones(video.n_steps, dtype=bool)
    values[~visible] = 0.0
    _plant_nans(rng, values, np.flatnonzero(visible))
    return values


def lld_frames(video: VideoPlan, signals: VideoSignals, seed: int) -> np.ndarray:
    """The (steps * 25, 130) matrix of low-level descriptors at a 10 ms hop."""
    rng = stream(seed, video.video_id, "lld")
    drivers = _audio_drivers(rng, signals)
    step_time = (np.arange(video.n_steps) + 0.5) * STEP_MS
    frame_time = (np.arange(video.n_steps * FRAMES_PER_STEP) + 0.5) * LLD_HOP_MS
    frames = np.stack([np.interp(frame_time, step_time, d) for d in drivers.T], axis=1)
    values = _mix("lld", frames, AUDIO_NOISE["lld"], rng)
    _plant_nans(rng, values, np.arange(len(values)))
    return values


def _audio_drivers(rng: np.random.Generator, signals: VideoSignals) -> np.ndarray:
    arousal = signals.clean["arousal"]
    heard = arousal + AROUSAL_JITTER * smooth_noise(rng, arousal.size, 6)
    return np.column_stack([heard, signals.nuisance])


def _vision_drivers(rng: np.random.Generator, signals: VideoSignals) -> np.ndarray:
    n = signals.face.size
    channels = (signals.clean["valence"], signals.clean["arousal"], np.tanh(signals.trust_own))
    weak = [VISION_WEIGHT * c + smooth_noise(rng, n, 6) for c in channels]
    pure_noise = [smooth_noise(rng, n, 6) for _ in range(2)]  # head motion, lighting
    return np.column_stack(weak + pure_noise)


@cache
def _projection(name: str, n_drivers: int) -> np.ndarray:
    """Loadings (drivers, dim) of an extractor."""
    rng = stream("projection", name)
    return rng.standard_normal((n_drivers, FEATURE_SETS[name].dim)) / np.sqrt(n_drivers)


def _mix(name: str, drivers: np.ndarray, noise: float, rng: np.random.Generator,
         offset: np.ndarray | float = 0.0) -> np.ndarray:
    """The set's descriptor values of the drivers' projection plus noise (and `offset`)."""
    loadings = _projection(name, drivers.shape[1])
    mixture = drivers @ loadings + noise * rng.standard_normal((len(drivers), loadings.shape[1]))
    # About unit variance, so that a profile's spread is the column's (the SNR is unchanged).
    return columns(name).apply(mixture / np.hypot(1.0, noise) + offset)


def _plant_nans(rng: np.random.Generator, values: np.ndarray, rows: np.ndarray) -> None:
    count = min(int(rng.poisson(NAN_PER_VIDEO)), rows.size)
    if count:
        values[rng.choice(rows, count), rng.integers(0, values.shape[1], count)] = np.nan
