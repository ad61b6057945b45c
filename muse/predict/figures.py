"""The PNG of one video's predictions: the predicted curves over time (MuSe-Wild, MuSe-Trust)
or the predicted class of each segment over time (MuSe-Topic).

Drawn like the run's own plots (`muse.runs.plots`): `matplotlib.figure.Figure` objects, never
pyplot, the predicted trace in the same red on a fixed [-1, 1] range, gaps where the video has
no label steps (silence between segments) left open instead of bridged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from muse.package.layout import STEP_MS, TOPIC_NAMES
from muse.runs.plots import EMOTION_NAMES, SHORT_TOPIC_NAMES
from muse.tasks import TASKS

PREDICTED_COLOR = "#d62728"  # muse.runs.plots' colour of the predicted series


def _targets(frame: pd.DataFrame) -> list[str]:
    return [c.removeprefix("prediction_") for c in frame.columns if c.startswith("prediction_")]


def _open_gaps(seconds: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A NaN point wherever steps are missing, so that no line bridges the gap."""
    gaps = np.flatnonzero(np.diff(seconds) > STEP_MS / 1000.0 + 1e-9) + 1
    return np.insert(seconds, gaps, np.nan), np.insert(values, gaps, np.nan)


def predicted_curves(frame: pd.DataFrame, task: str, name: str) -> Figure:
    """One row of axes per target of `timestamp, prediction_<target>...` (one video)."""
    targets = _targets(frame)
    fig = Figure(figsize=(8.0, 0.9 + 2.1 * len(targets)), layout="constrained")
    axes = fig.subplots(len(targets), 1, squeeze=False)[:, 0]
    ordered = frame.sort_values("timestamp")
    seconds = ordered["timestamp"].to_numpy(np.float64) / 1000.0
    for ax, target in zip(axes, targets, strict=True):
        x, y = _open_gaps(seconds, ordered[f"prediction_{target}"].to_numpy(np.float64))
        ax.plot(x, y, color=PREDICTED_COLOR, linewidth=1.2, marker="." if len(x) < 40 else None)
        ax.set_title(f"{name} · {target}", fontsize=10)
        ax.set_ylim(-1.05, 1.05)
        ax.set_yticks([-1.0, -0.5, 0.0, 0.5, 1.0])
        ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
        if seconds.size:
            ax.set_xlim(seconds.min(), max(seconds.max(), seconds.min() + STEP_MS / 1000.0))
        ax.grid(True, color="0.92")
        ax.set_ylabel("predicted")
    axes[-1].set_xlabel("time [s]")
    fig.suptitle(f"MuSe-{task.capitalize()}: predicted {', '.join(targets)}", fontsize=12)
    return fig


def predicted_segments(frame: pd.DataFrame, name: str) -> Figure:
    """One row of axes per target: each segment's predicted class as a bar over its time."""
    targets = _targets(frame)
    fig = Figure(figsize=(8.0, 0.9 + (2.6 if "topic" in targets else 0) + 1.6 * len(targets)),
                 layout="constrained")
    axes = fig.subplots(len(targets), 1, squeeze=False,
                        height_ratios=[2.6 if t == "topic" else 1.0 for t in targets])[:, 0]
    for ax, target in zip(axes, targets, strict=True):
        names = SHORT_TOPIC_NAMES if target == "topic" else EMOTION_NAMES
        start = frame["start"].to_numpy(np.float64) / 1000.0
        end = np.maximum(frame["end"].to_numpy(np.float64) / 1000.0, start + STEP_MS / 1000.0)
        ax.hlines(frame[f"prediction_{target}"], start, end, color=PREDICTED_COLOR, linewidth=6)
        ax.set_yticks(range(len(names)), names)
        ax.set_ylim(-0.5, len(names) - 0.5)
        ax.set_title(f"{name} · {target}", fontsize=10)
        ax.grid(True, color="0.92")
    axes[-1].set_xlabel("time [s]")
    fig.suptitle(f"MuSe-Topic: predicted class per segment ({len(TOPIC_NAMES)} topics, "
                 "3 emotion classes)", fontsize=12)
    return fig


def figure(frame: pd.DataFrame, task: str, name: str) -> Figure:
    """The task's figure of one video's predictions."""
    if TASKS[task].continuous:
        return predicted_curves(frame, task, name)
    return predicted_segments(frame, name)
