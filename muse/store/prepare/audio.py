"""One video's raw audio: segment wav files placed on the video's time line at a common rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from muse.package.layout import audio_file
from muse.package.reader import read_audio


def video_audio(package: Path, task: str, video: int, starts_ms: dict[int, int], end_ms: int,
                rate: int) -> tuple[np.ndarray, int]:
    """The video's signal from 0 ms to `end_ms` and the number of segment wav files missing.

    Each segment's wav starts at the segment's first timestamp; silence fills what no file covers.
    """
    signal = np.zeros(int(round(end_ms * rate / 1000)), dtype=np.int16)
    missing = 0
    for segment, start in starts_ms.items():
        path = audio_file(package, task, video, segment)
        if not path.exists():
            missing += 1
            continue
        samples = read_audio(path, rate)
        first = int(round(start * rate / 1000))
        stop = min(len(signal), first + len(samples))
        if stop > first:
            signal[first:stop] = samples[: stop - first]
    return signal, missing


def segment_starts(timestamp: np.ndarray, segment_id: np.ndarray) -> dict[int, int]:
    """The first timestamp of every segment in step rows."""
    segments, first = np.unique(segment_id, return_index=True)
    return {int(s): int(timestamp[i]) for s, i in zip(segments, first, strict=True)}
