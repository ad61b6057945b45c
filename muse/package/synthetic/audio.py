"""The wav file of one segment: a voice whose loudness, pitch and brightness follow arousal.

While a word is spoken, a harmonic carrier sounds (three partials); higher arousal makes it
louder (+-8 dB), higher pitched (+-half an octave around 140 Hz) and brighter. Silence between
words is faint noise. So a model that hears raw audio can learn arousal, and only arousal.
"""

from __future__ import annotations

import io

import numpy as np
from scipy.io import wavfile

from muse.package.layout import STEP_MS

SAMPLE_RATE = 16_000
SAMPLES_PER_STEP = SAMPLE_RATE * STEP_MS // 1000
BASE_PITCH_HZ = 140.0
LEVEL_DB = -20.0
NOISE_LEVEL = 0.003


def segment_wav(arousal: np.ndarray, first_ms: int, start_ms: np.ndarray, end_ms: np.ndarray,
                rng: np.random.Generator) -> bytes:
    """16 kHz mono int16 wav covering the segment's steps (`arousal` has one value per step),
    voiced during the words [start_ms, end_ms) given in video time."""
    n = arousal.size * SAMPLES_PER_STEP
    step_centres = (np.arange(arousal.size) + 0.5) * SAMPLES_PER_STEP
    level = np.interp(np.arange(n), step_centres, arousal).astype(np.float32)
    pitch = BASE_PITCH_HZ * np.exp2(0.5 * level)
    # float64 phase for accuracy over long segments, float32 from there on for speed
    phase = (2.0 * np.pi / SAMPLE_RATE * np.cumsum(pitch, dtype=np.float64)
             % (2.0 * np.pi)).astype(np.float32)
    brightness = 0.35 + 0.25 * level
    first, second = np.sin(phase), np.sin(2 * phase)
    third = first * (3 - 4 * first * first)  # sin(3x)
    voice = first + brightness * (second + brightness * third)
    voice *= np.power(np.float32(10.0), (LEVEL_DB + 8.0 * level) / 20.0)
    voiced = np.zeros(n, dtype=bool)
    for start, end in zip(start_ms - first_ms, end_ms - first_ms, strict=True):
        voiced[start * SAMPLE_RATE // 1000:end * SAMPLE_RATE // 1000] = True
    voice[~voiced] = 0.0
    voice += NOISE_LEVEL * rng.standard_normal(n, dtype=np.float32)
    pcm = np.clip(np.rint(voice * 32767), -32768, 32767).astype(np.int16)
    buffer = io.BytesIO()
    wavfile.write(buffer, SAMPLE_RATE, pcm)
    return buffer.getvalue()
