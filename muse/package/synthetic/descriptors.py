"""What each synthetic feature column looks like: its level, its spread and its kind of value.

Real descriptors do not share one scale. In one eGeMAPS row jitter is about 0.02, loudness about
1, F0 about 30 semitones and formant frequencies 500-3000 Hz with bandwidths about 1000 Hz;
OpenFace gives gaze and head-pose angles in radians, landmarks in pixels (hundreds) and
millimetres, action-unit intensities in [0, 5] and presences in [0, 1]; CNN embeddings
(VGGface, DeepSpectrum, Xception) are ReLU outputs, non-negative and partly exactly zero. A model
that reads them raw sees inputs four or five orders of magnitude apart, which is what feature
normalisation is for, so the generator reproduces it.

A column is described by `Columns`: `level` and `spread` per column and a `kind` per column:

* `linear`: `level + spread * z` (a measurement around its typical value);
* `relu`: `max(0, level + spread * z)` (a CNN activation; a negative level makes it sparse);
* `probability`: `sigmoid(level + spread * z)` (a detector's confidence in [0, 1]);
* `intensity`: `clip(level + spread * z, 0, 5)` (an action-unit intensity).

`z` is the column's mixed signal and noise (`muse.package.synthetic.features`), about unit scale,
so the planted signal is still a linear (or monotone) function of every column. Each profile
is fixed by the set's name (the extractor is the same in every package); blocks of similar
columns get a small per-column jitter of their level and spread from a stream seeded by name.
The magnitudes stay below 10^5, which the package writer formats exactly to five digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from muse.package.synthetic.seeds import stream

KINDS = ("linear", "relu", "probability", "intensity")
AU_INTENSITY_MAX = 5.0


@dataclass(frozen=True)
class Columns:
    """Per-column level, spread and kind (an index into `KINDS`) of a feature set."""

    level: np.ndarray
    spread: np.ndarray
    kind: np.ndarray

    def apply(self, z: np.ndarray) -> np.ndarray:
        """The descriptor values of the (rows, dim) unit-scale mixture `z`."""
        values = self.level + self.spread * z
        relu, probability, intensity = (self.kind == KINDS.index(k) for k in KINDS[1:])
        values[:, relu] = np.maximum(values[:, relu], 0.0)
        values[:, probability] = 1.0 / (1.0 + np.exp(-values[:, probability]))
        values[:, intensity] = np.clip(values[:, intensity], 0.0, AU_INTENSITY_MAX)
        return values


# (columns, level, spread[, kind]) blocks, in column order.
Block = tuple

# eGeMAPS v01a functionals (88), in openSMILE's order: F0 and loudness statistics, spectral flux,
# MFCC 1-4, jitter, shimmer, HNR, harmonic differences, formants 1-3 (frequency, bandwidth,
# amplitude), voiced/unvoiced spectral shape, rates and the equivalent sound level.
EGEMAPS: tuple[Block, ...] = (
    (1, 30.0, 4.0), (1, 0.15, 0.05), (1, 27.0, 4.0), (1, 30.0, 4.0), (1, 33.0, 4.0),
    (1, 6.0, 2.0), (1, 150.0, 60.0), (1, 100.0, 50.0), (1, 100.0, 40.0), (1, 80.0, 40.0),
    (1, 1.0, 0.4), (1, 0.7, 0.15), (1, 0.4, 0.2), (1, 0.9, 0.4), (1, 1.6, 0.6),
    (1, 1.2, 0.5), (1, 10.0, 4.0), (1, 8.0, 3.0), (1, 8.0, 3.0), (1, 6.0, 3.0),
    (1, 0.5, 0.2), (1, 0.8, 0.2),                                   # spectral flux
    (1, 25.0, 8.0), (1, 0.5, 0.3), (1, 10.0, 6.0), (1, 0.8, 0.4),   # MFCC 1-4
    (1, 5.0, 6.0), (1, 2.0, 1.0), (1, 3.0, 6.0), (1, 3.0, 1.5),
    (1, 0.02, 0.008), (1, 1.2, 0.3),                                # jitter
    (1, 1.2, 0.3), (1, 0.5, 0.15),                                  # shimmer (dB)
    (1, 6.0, 2.5), (1, 0.6, 0.2),                                   # HNR (dB)
    (1, 5.0, 3.0), (1, 1.5, 1.0), (1, 20.0, 6.0), (1, 0.6, 0.3),    # H1-H2, H1-A3
    (1, 550.0, 80.0), (1, 0.3, 0.08), (1, 1100.0, 200.0), (1, 0.4, 0.1),     # F1
    (1, -100.0, 30.0), (1, -0.6, 0.3),
    (1, 1550.0, 120.0), (1, 0.15, 0.04), (1, 1000.0, 200.0), (1, 0.3, 0.1),  # F2
    (1, -110.0, 30.0), (1, -0.5, 0.3),
    (1, 2600.0, 150.0), (1, 0.08, 0.02), (1, 900.0, 200.0), (1, 0.35, 0.1),  # F3
    (1, -120.0, 30.0), (1, -0.5, 0.3),
    (1, -10.0, 4.0), (1, -0.4, 0.2), (1, 20.0, 6.0), (1, 0.4, 0.15),         # voiced shape
    (1, 0.02, 0.02), (1, 1.5, 1.0), (1, -0.01, 0.01), (1, -1.5, 1.0),
    (1, 0.6, 0.25), (1, 0.7, 0.2),
    (1, 30.0, 8.0), (1, 0.4, 0.2), (1, 8.0, 6.0), (1, 0.9, 0.5),             # voiced MFCC
    (1, 6.0, 6.0), (1, 1.5, 1.0), (1, 4.0, 6.0), (1, 2.5, 1.5),
    (1, -8.0, 4.0), (1, 15.0, 6.0), (1, 0.01, 0.02), (1, -0.005, 0.01),      # unvoiced
    (1, 0.3, 0.15),
    (1, 3.0, 0.8), (1, 2.0, 0.6), (1, 0.25, 0.08), (1, 0.2, 0.07),           # rates (1/s, s)
    (1, 0.15, 0.06), (1, 0.15, 0.07), (1, -30.0, 5.0),                       # ... and dB
)

# ComParE 2016 low-level descriptors (65), then their deltas (65, about a tenth of the spread).
_LLD_BASE: tuple[Block, ...] = (
    (1, 5.0, 3.0), (1, 0.5, 0.3), (1, 0.03, 0.02), (1, 0.08, 0.04),          # energy, zcr
    (26, 0.5, 0.4),                                                          # RASTA bands
    (1, 0.3, 0.2), (1, 0.2, 0.15),                                           # band energies
    (1, 700.0, 300.0), (1, 1500.0, 500.0), (1, 2800.0, 700.0), (1, 4500.0, 800.0),  # roll-off
    (1, 0.5, 0.4), (1, 1800.0, 500.0), (1, 0.7, 0.1), (1, 20000.0, 8000.0),  # flux .. variance
    (1, 2.0, 1.0), (1, 8.0, 5.0), (1, -0.01, 0.01), (1, 1.2, 0.3), (1, 0.5, 2.0),
    (1, 10.0, 8.0), (13, 0.0, 8.0),                                          # MFCC 1-14
    (1, 150.0, 60.0), (1, 0.6, 0.2), (1, 0.03, 0.02), (1, 0.05, 0.03),       # F0, voicing,
    (1, 0.12, 0.05), (1, 1.0, 0.8),                                          # jitter, shimmer
)
DELTA_SPREAD = 0.1

FACE_SIZE_PX = (640.0, 360.0)  # the centre of a 1280 x 720 frame


def _au() -> tuple[Block, ...]:
    return ((17, 0.5, 1.0, "intensity"), (18, -1.0, 1.5, "probability"))


def _gaze() -> tuple[Block, ...]:
    x, y = FACE_SIZE_PX
    vectors = ((1, 0.05, 0.15), (1, 0.1, 0.12), (1, -0.97, 0.03)) * 2    # unit gaze vectors
    return (*vectors, (1, 0.05, 0.2), (1, 0.1, 0.15),                    # gaze angles (rad)
            (56, x, 40.0), (56, y - 30.0, 30.0),                         # eye landmarks (px)
            (56, 0.0, 20.0), (56, -20.0, 20.0), (56, 450.0, 60.0))       # ... and (mm)


def _pose() -> tuple[Block, ...]:
    return ((1, 20.0, 80.0), (1, 30.0, 60.0), (1, 550.0, 100.0),         # translation (mm)
            (1, 0.1, 0.15), (1, 0.05, 0.25), (1, 0.02, 0.1))             # rotation (rad)


def _profiles() -> dict[str, tuple[Block, ...]]:
    x, y = FACE_SIZE_PX
    return {
        "egemaps": EGEMAPS,
        "lld": _LLD_BASE + tuple((n, 0.0, DELTA_SPREAD * spread) for n, _, spread in _LLD_BASE),
        "deepspectrum": ((4096, -0.3, 1.0, "relu"),),
        "vggface": ((512, -0.2, 1.5, "relu"),),
        "xception": ((2048, 0.1, 0.3, "relu"),),
        "gocar": ((350, -2.0, 1.5, "probability"),),                     # detector confidences
        "openpose": ((18, x, 150.0), (18, y, 100.0), (18, 1.0, 1.5, "probability")),
        "au": _au(),
        "gaze": _gaze(),
        "landmarks_2d": ((68, x, 60.0), (68, y, 50.0)),                  # pixels
        "landmarks_3d": ((68, 0.0, 25.0), (68, 15.0, 25.0), (68, 480.0, 60.0)),  # mm
        "pdm": ((1, 2.5, 0.5), (1, 0.1, 0.15), (1, 0.05, 0.2), (1, 0.02, 0.1),
                (1, x, 100.0), (1, y, 60.0), (34, 0.0, 15.0)),           # scale, rotation, px
        "pose": _pose(),
    }


@cache
def columns(name: str) -> Columns:
    """The column profile of a (non-text) feature set, as wide as the set."""
    blocks = _profiles()[name]
    rng = stream("descriptors", name)
    level, spread, kind = [], [], []
    for block in blocks:
        count, centre, width = block[:3]
        # Columns of one block differ a little, as the 26 RASTA bands or 68 landmarks do.
        jitter = 1.0 if count == 1 else rng.uniform(0.7, 1.3, count)
        level.append(np.full(count, centre) + (0.0 if count == 1 else
                                               0.3 * width * rng.standard_normal(count)))
        spread.append(np.full(count, width) * jitter)
        kind.append(np.full(count, KINDS.index(block[3] if len(block) > 3 else "linear")))
    return Columns(np.concatenate(level), np.concatenate(spread), np.concatenate(kind))
