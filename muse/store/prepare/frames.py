"""Frame-rate features (LLD at a 10 ms hop) averaged onto the 250 ms label steps.

The package ships LLD unaligned only; MuSe-Wild and MuSe-Trust feed it to the LSTM per label
step, as the paper aligns every feature of those sub-challenges to the label timestamps. A step
at timestamp `t` covers `[t, t + 250)` ms, the same window as its raw-audio samples
(docs/hdf5-store.md), and gets the mean of the frames whose timestamp lies in that window.
"""

from __future__ import annotations

import numpy as np

from muse.package.layout import STEP_MS


def step_means(frame_time: np.ndarray, values: np.ndarray, step_time: np.ndarray,
               step_ms: int = STEP_MS) -> tuple[np.ndarray, np.ndarray]:
    """Per step, the float32 mean of the frames in `[t, t + step_ms)` and whether it had none.

    A step without frames gets zeros, what the store uses for an absent modality. Frames before
    the first step, after the last one or in gaps between steps belong to no step.
    """
    steps, dim = len(step_time), values.shape[1]
    if not len(frame_time) or not steps:
        return np.zeros((steps, dim), np.float32), np.ones(steps, dtype=bool)
    if np.any(np.diff(frame_time) < 0):
        order = np.argsort(frame_time, kind="stable")
        frame_time, values = frame_time[order], values[order]
    first = np.searchsorted(frame_time, step_time, side="left")
    stop = np.searchsorted(frame_time, step_time + step_ms, side="left")
    counts = stop - first
    # reduceat over interleaved (first, stop) bounds sums each window at even positions; a
    # trailing zero row keeps a window that ends at the last frame within the index range.
    # A window holds some 25 frames, so float32 sums lose nothing the stored float32 keeps
    # (float64 accumulation is five times slower here).
    padded = np.concatenate([values.astype(np.float32, copy=False),
                             np.zeros((1, dim), np.float32)])
    bounds = np.empty(2 * steps, dtype=np.intp)
    bounds[0::2], bounds[1::2] = first, stop
    sums = np.add.reduceat(padded, bounds, axis=0)[0::2]
    empty = counts == 0
    means = sums / np.maximum(counts, 1).astype(np.float32)[:, None]
    means[empty] = 0.0  # reduceat gives the row at `first` for an empty window
    return means, empty
