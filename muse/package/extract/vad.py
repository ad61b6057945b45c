"""Speech segments on the 250 ms label grid, found by WebRTC's voice activity detector.

`webrtcvad` (the `webrtcvad-wheels` build) is the GMM detector of the WebRTC project, compiled
into its wheel: it needs no weights to download and no torch. It judges 10 ms frames; a 250 ms
step is speech when at least `STEP_SPEECH_FRACTION` of its frames are. Speech steps become
segments, pauses shorter than `MERGE_GAP_MS` join the segments around them and segments
shorter than `MIN_SEGMENT_MS` are dropped (a click, a cough), so a segment is a stretch of
talk and the silence before, after and between long pauses belongs to no segment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import webrtcvad

from muse.package.extract.decode import SAMPLE_RATE
from muse.package.layout import STEP_MS

FRAME_MS = 10
AGGRESSIVENESS = 2  # 0 (keeps most) .. 3 (drops most non-speech); 2 suits noisy reviews
STEP_SPEECH_FRACTION = 0.3
MERGE_GAP_MS = 1000
MIN_SEGMENT_MS = 500


@dataclass(frozen=True)
class Segment:
    """A stretch of speech `[start_ms, end_ms)` on the label grid; ids run 1..K per video."""

    segment_id: int
    start_ms: int
    end_ms: int

    def steps(self) -> np.ndarray:
        """The timestamps (ms) of the segment's label steps."""
        return np.arange(self.start_ms, self.end_ms, STEP_MS, dtype=np.int64)


def speech_segments(samples: np.ndarray, aggressiveness: int = AGGRESSIVENESS) -> list[Segment]:
    """The speech segments of 16 kHz int16 `samples`, in time order."""
    speech = _speech_steps(samples, aggressiveness)
    runs = _runs(speech)
    merged: list[list[int]] = []
    gap_steps = MERGE_GAP_MS // STEP_MS
    for first, stop in runs:
        if merged and first - merged[-1][1] < gap_steps:
            merged[-1][1] = stop
        else:
            merged.append([first, stop])
    kept = [(a, b) for a, b in merged if (b - a) * STEP_MS >= MIN_SEGMENT_MS]
    return [Segment(i, a * STEP_MS, b * STEP_MS) for i, (a, b) in enumerate(kept, start=1)]


def _speech_steps(samples: np.ndarray, aggressiveness: int) -> np.ndarray:
    """Per whole 250 ms step of the signal, whether it is speech."""
    detector = webrtcvad.Vad(aggressiveness)
    frame = SAMPLE_RATE * FRAME_MS // 1000
    frames_per_step = STEP_MS // FRAME_MS
    steps = len(samples) // (frame * frames_per_step)
    pcm = np.ascontiguousarray(samples[: steps * frames_per_step * frame], dtype="<i2")
    voiced = np.fromiter(
        (detector.is_speech(pcm[i * frame:(i + 1) * frame].tobytes(), SAMPLE_RATE)
         for i in range(steps * frames_per_step)), dtype=bool, count=steps * frames_per_step)
    return voiced.reshape(steps, frames_per_step).mean(axis=1) >= STEP_SPEECH_FRACTION


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """`[first, stop)` index pairs of the runs of True in `mask`."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(),
                    strict=True))
