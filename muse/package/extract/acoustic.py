"""openSMILE features as the challenge computed them, with the `opensmile` package (its
configurations and library ship in the wheel, nothing is downloaded).

* `egemaps`: the 88 eGeMAPS (v02) functionals over a 5 s window per 250 ms label step. The
  window of the step at `t` is centred on the step, `[t + 125 - 2500, t + 125 + 2500)` ms,
  cut to the signal at its ends; each window is its own `process_signal` call, so a row is
  exactly what openSMILE gives for that stretch of audio.
* `lld`: 130 values per 10 ms frame, the 65 ComParE 2016 low-level descriptors (openSMILE's
  default LLD set, 20/60 ms frames at a 10 ms hop) followed by their 65 first-order deltas.
  The paper speaks of "1st and 2nd-order derivatives", but 130 is no multiple of 3, so no set
  of LLDs with both derivatives gives it (eGeMAPS has 25 LLDs, emobase 26, ComParE 65); 65
  LLDs + 65 deltas is ComParE's, openSMILE's default LLD set. A frame's timestamp is the start
  of its window.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import cache

import numpy as np
import opensmile

from muse.package.extract.decode import SAMPLE_RATE
from muse.package.layout import FEATURE_SETS, STEP_MS

EGEMAPS_WINDOW_MS = 5000
LLD_HOP_MS = 10


@cache
def _smile(feature_set: opensmile.FeatureSet, level: opensmile.FeatureLevel) -> opensmile.Smile:
    return opensmile.Smile(feature_set=feature_set, feature_level=level)


def egemaps_smile() -> opensmile.Smile:
    return _smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)


def egemaps_window(step_ms: int, duration_ms: int) -> tuple[int, int]:
    """The `[start, end)` ms of the 5 s window of the label step at `step_ms`."""
    centre = step_ms + STEP_MS // 2
    half = EGEMAPS_WINDOW_MS // 2
    return max(0, centre - half), min(duration_ms, centre + half)


def egemaps_steps(samples: np.ndarray, steps_ms: np.ndarray,
                  pool: Executor | None = None, workers: int = 1) -> np.ndarray:
    """(steps, 88) float32: the eGeMAPS functionals of each step's window.

    Each window is a separate openSMILE run (about 0.1 s of one core for 5 s of audio), the
    cost of extraction; with a process `pool` of `workers` the windows are shared among them,
    with the same rows as one process gives."""
    if pool is None or workers <= 1 or len(steps_ms) < 2 * workers:
        return _egemaps_rows(samples, steps_ms)
    chunks = np.array_split(steps_ms, workers)
    return np.concatenate(list(pool.map(_egemaps_rows, [samples] * workers, chunks)))


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """Processes for `egemaps_steps`, started once per extraction (each imports openSMILE).
    Spawned, not forked: a forked child would inherit the parent's threads mid-state."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))


def _egemaps_rows(samples: np.ndarray, steps_ms: np.ndarray) -> np.ndarray:
    smile = egemaps_smile()
    duration_ms = len(samples) * 1000 // SAMPLE_RATE
    signal = samples.astype(np.float32) / 32768.0
    rows = np.empty((len(steps_ms), FEATURE_SETS["egemaps"].dim), np.float32)
    for i, step in enumerate(steps_ms.tolist()):
        start, end = egemaps_window(step, duration_ms)
        window = signal[start * SAMPLE_RATE // 1000:end * SAMPLE_RATE // 1000]
        rows[i] = smile.process_signal(window, SAMPLE_RATE).to_numpy()[0]
    return rows


def lld_frames(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame start times (ms) and (frames, 130) float32 values: ComParE 2016 LLDs and deltas.

    openSMILE's delta output runs a couple of frames longer than the LLDs; only the frames both
    have are kept."""
    signal = samples.astype(np.float32) / 32768.0
    parts = []
    for level in (opensmile.FeatureLevel.LowLevelDescriptors,
                  opensmile.FeatureLevel.LowLevelDescriptors_Deltas):
        frame = _smile(opensmile.FeatureSet.ComParE_2016, level).process_signal(signal,
                                                                                 SAMPLE_RATE)
        starts = frame.index.get_level_values("start")
        parts.append((np.asarray(starts.total_seconds() * 1000).round().astype(np.int64),
                      frame.to_numpy(np.float32)))
    (times, lld), (delta_times, delta) = parts
    frames = min(len(times), len(delta_times))
    if not np.array_equal(times[:frames], delta_times[:frames]):
        raise RuntimeError("openSMILE's LLD and delta frames do not share their times")
    values = np.concatenate([lld[:frames], delta[:frames]], axis=1)
    assert values.shape[1] == FEATURE_SETS["lld"].dim
    return times[:frames], values
