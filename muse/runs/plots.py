"""Diagnostic figures for a training run: prediction curves, confusion matrices, learning curves.

Every function here is pure: it takes plain frames or a metric history and returns a new
`matplotlib.figure.Figure`, which the training harness logs with
`mlflow.log_figure(fig, "plots/<name>.png")`. Figures are built with the object-oriented
API (`Figure(...)`), never through `matplotlib.pyplot`, so nothing registers with pyplot's
figure manager: no global state leaks between calls, nothing needs closing, and the code runs
under any backend, including headless training machines.

The frames follow the challenge's table layouts (see `docs/challenge-format.md` §1): gold
frames are aggregated label tables with `label_<target>` columns, prediction frames are
submissions with `prediction_<target>` columns, both keyed by the task's key columns. The
scores shown in titles come from `muse.metrics` with the official rounding, so a title reads
the same number the scorer and the MLflow metrics report.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from muse.metrics.functional import classification_scores, official_ccc, round_ccc
from muse.package.layout import EMOTION_CLASSES, STEP_MS, TOPIC_NAMES
from muse.tasks import TASKS

EMOTION_NAMES = ("low", "medium", "high")

# Full topic names do not fit as tick labels of a 10x10 matrix; these are the short forms.
# Looked up by full name so a renamed topic falls back to its own name instead of a wrong one.
_SHORT_TOPIC_NAMES = {
    "General Information": "General",
    "Costs": "Costs",
    "Performance": "Performance",
    "Quality & Aesthetic": "Quality",
    "Safety": "Safety",
    "Comfort": "Comfort",
    "Exterior Features": "Exterior",
    "Interior Features": "Interior",
    "Handling/Driving Experience": "Handling",
    "User Experience": "User exp.",
}
SHORT_TOPIC_NAMES = tuple(_SHORT_TOPIC_NAMES.get(name, name) for name in TOPIC_NAMES)

# The paper's Figure 2 order: topic first, then the two emotion dimensions.
_CLASS_TARGETS = ("topic", "arousal", "valence")
_GOLD_COLOR, _PRED_COLOR = "#333333", "#d62728"


def _present_targets(
    gold: pd.DataFrame, predictions: pd.DataFrame, candidates: Sequence[str]
) -> list[str]:
    """The candidate targets with a gold label column and a prediction column."""
    return [
        t for t in candidates
        if f"label_{t}" in gold.columns and f"prediction_{t}" in predictions.columns
    ]


def _join(
    gold: pd.DataFrame, predictions: pd.DataFrame, key: list[str], targets: list[str], how: str
) -> pd.DataFrame:
    """Gold and predictions side by side on the key.

    Only the key and the wanted columns are taken from each side, so a prediction frame that
    also carries `label_*` columns (or extra columns) cannot produce suffixed duplicates.
    """
    for name, frame in (("gold", gold), ("predictions", predictions)):
        missing = [column for column in key if column not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame lacks key column(s) {', '.join(missing)}")
    left = gold[key + [f"label_{t}" for t in targets]]
    right = predictions[key + [f"prediction_{t}" for t in targets]]
    return left.merge(right, on=key, how=how)


# --- continuous tasks: gold vs predicted over time ----------------------------------------------


def prediction_curves(
    gold: pd.DataFrame, predictions: pd.DataFrame, task: str, videos: int = 4
) -> Figure:
    """Gold and predicted traces of a few videos of a continuous task (wild, trust).

    `gold` is an aggregated label table (`id, timestamp, label_<target>...`), `predictions` a
    submission-layout frame (`id, timestamp, prediction_<target>...`), normally both of the
    devel partition. The first `videos` ids present in both frames (ascending, so the same
    videos every epoch and every run) get one row of axes each, with one column per target
    found in both frames, in the task's target order (trust multitask runs show arousal and
    valence next to trustworthiness). Titles carry the video id and that video's official CCC,
    rounded as the scorer reports it; rows with a missing value on either side are drawn as
    gaps and left out of the CCC.
    """
    if task not in TASKS or not TASKS[task].continuous:
        continuous = [name for name, spec in TASKS.items() if spec.continuous]
        raise ValueError(f"prediction curves need a continuous task ({', '.join(continuous)}),"
                         f" got {task!r}")
    if videos < 1:
        raise ValueError(f"videos must be at least 1, got {videos}")
    spec = TASKS[task]
    targets = _present_targets(gold, predictions, spec.targets)
    if not targets:
        raise ValueError(f"no {task} target has both label_<target> and prediction_<target>"
                         f" columns (targets: {', '.join(spec.targets)})")
    key = list(spec.key)
    # Outer join: a stretch predicted for only part of a video still shows the full gold trace.
    joined = _join(gold, predictions, key, targets, how="outer")
    shared = sorted(set(gold["id"]) & set(predictions["id"]))
    if not shared:
        raise ValueError("gold and predictions share no video id")
    chosen = shared[:videos]

    rows, cols = len(chosen), len(targets)
    fig = Figure(figsize=(max(6.5, 5.2 * cols), 0.9 + 2.1 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for row, video in enumerate(chosen):
        frame = joined[joined["id"] == video].sort_values("timestamp")
        seconds = frame["timestamp"].to_numpy(dtype=np.float64) / 1000.0
        for col, target in enumerate(targets):
            ax = axes[row, col]
            truth = frame[f"label_{target}"].to_numpy(dtype=np.float64)
            guess = frame[f"prediction_{target}"].to_numpy(dtype=np.float64)
            both = np.isfinite(truth) & np.isfinite(guess)
            ccc = round_ccc(official_ccc(truth[both], guess[both]))
            x, truth, guess = _break_at_gaps(seconds, truth, guess)
            ax.plot(x, truth, color=_GOLD_COLOR, linewidth=1.2, label="gold")
            ax.plot(x, guess, color=_PRED_COLOR, linewidth=1.2, label="predicted")
            ax.set_title(f"video {video} · {target} · CCC {ccc:.4f}", fontsize=10)
            # A fixed range makes rows comparable; the small margin keeps a trace at +-1
            # visible instead of hidden under the frame.
            ax.set_ylim(-1.05, 1.05)
            ax.set_yticks([-1.0, -0.5, 0.0, 0.5, 1.0])
            ax.axhline(0.0, color="0.8", linewidth=0.8, zorder=0)
            if seconds.size:
                # Pad by one label step so a single-step video still gets a nonzero x range.
                step = STEP_MS / 1000.0
                ax.set_xlim(seconds.min(), max(seconds.max(), seconds.min() + step))
            ax.grid(True, color="0.92")
            if row == rows - 1:
                ax.set_xlabel("time [s]")
            if col == 0:
                ax.set_ylabel("value")
    # One legend for the whole figure: every axis draws the same two series.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    # Below the axes: at the top it collides with the suptitle when there is one column.
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    fig.suptitle(f"MuSe-{task.capitalize()}: gold vs predicted", fontsize=12)
    return fig


# --- MuSe-Topic: relative confusion matrices -----------------------------------------------------


def _class_names(target: str, n_classes: int) -> list[str]:
    names = list(SHORT_TOPIC_NAMES if target == "topic" else EMOTION_NAMES)
    # A class id beyond the known names (a bug upstream, or a larger topic set) is still shown,
    # by number, rather than dropped from the matrix.
    return names[:n_classes] + [str(c) for c in range(len(names), n_classes)]


def _integer_classes(values: pd.Series, column: str) -> np.ndarray:
    array = values.to_numpy(dtype=np.float64)
    if not np.isfinite(array).all() or (array % 1).any() or (array < 0).any():
        raise ValueError(f"{column} must hold non-negative integer classes")
    return array.astype(np.int64)


def relative_confusion(truth: np.ndarray, guess: np.ndarray, n_classes: int) -> np.ndarray:
    """Row-normalised confusion matrix: row = gold class, column = predicted class.

    Each row sums to 1 over the segments of that gold class; a gold class without segments
    gets a NaN row (drawn blank) so "never seen" is not mistaken for "never recognised".
    """
    counts = np.zeros((n_classes, n_classes), dtype=np.float64)
    np.add.at(counts, (truth, guess), 1.0)
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, counts / support, np.nan)


def _break_at_gaps(seconds: np.ndarray, *series: np.ndarray) -> list[np.ndarray]:
    """Insert a NaN point where steps are missing (a left-out advert), so no line bridges it."""
    gaps = np.flatnonzero(np.diff(seconds) > STEP_MS / 1000.0 + 1e-9) + 1
    return [np.insert(values, gaps, np.nan) for values in (seconds, *series)]


def confusion_matrices(gold: pd.DataFrame, predictions: pd.DataFrame) -> Figure:
    """Relative confusion matrices of MuSe-Topic, side by side like the paper's Figure 2.

    `gold` is the topic aggregated table (`id, segment_id, label_topic, label_arousal,
    label_valence`), `predictions` a topic submission frame; segments are matched on
    `id, segment_id` and only segments in both frames count. One matrix per target present in
    both frames (topic, arousal, valence, in that order), rows normalised per gold class,
    cells annotated in %. Each title carries the official F1, UAR and score of that target.
    """
    key = list(TASKS["topic"].key)
    targets = _present_targets(gold, predictions, _CLASS_TARGETS)
    if not targets:
        raise ValueError("no topic target has both label_<target> and prediction_<target> columns")
    joined = _join(gold, predictions, key, targets, how="inner")
    if joined.empty:
        raise ValueError("gold and predictions share no (id, segment_id) key")

    # The topic matrix has 10 classes against 3: give it more room so its cells stay readable.
    ratios = [1.9 if t == "topic" else 1.0 for t in targets]
    # Taller than the squares need when the topic matrix is there: constrained layout does not
    # reserve quite enough room below an equal-aspect axis with rotated tick labels, and the
    # slack keeps its "predicted" label inside the figure.
    height = 6.4 if "topic" in targets else 4.4
    fig = Figure(figsize=(1.6 + 3.0 * sum(ratios), height), layout="constrained")
    # Extra space between panels keeps each matrix's "gold" label clear of its left neighbour.
    fig.get_layout_engine().set(wspace=0.06)
    axes = fig.subplots(1, len(targets), squeeze=False, width_ratios=ratios)[0]
    image = None
    for ax, target in zip(axes, targets, strict=True):
        truth = _integer_classes(joined[f"label_{target}"], f"label_{target}")
        guess = _integer_classes(joined[f"prediction_{target}"], f"prediction_{target}")
        known = len(TOPIC_NAMES) if target == "topic" else EMOTION_CLASSES
        n_classes = max(known, int(truth.max()) + 1, int(guess.max()) + 1)
        matrix = relative_confusion(truth, guess, n_classes)
        image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)

        names = _class_names(target, n_classes)
        ax.set_xticks(range(n_classes), names, rotation=45 if target == "topic" else 0,
                      ha="right" if target == "topic" else "center", rotation_mode="anchor")
        ax.set_yticks(range(n_classes), names)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        small = n_classes > 5
        for row in np.flatnonzero(np.isnan(matrix).all(axis=1)):
            # Say why a row is blank; an empty row alone looks like a rendering fault.
            ax.text((n_classes - 1) / 2, row, "no gold segments", ha="center", va="center",
                    fontsize=7 if small else 9, color="0.45", style="italic")
        for (row, col), value in np.ndenumerate(matrix):
            if np.isnan(value):
                continue
            # Dark cells get white text so the percentage stays legible on the colormap.
            ax.text(col, row, f"{100 * value:.0f}", ha="center", va="center",
                    fontsize=7 if small else 10, color="white" if value > 0.55 else "black")

        scores = classification_scores(truth, guess)
        # Two short lines: one line of all three numbers is wider than a 3x3 matrix.
        ax.set_title(
            f"{target}: score {scores['score']:.3f} (n={truth.size})\n"
            f"F1 {scores['f1']:.3f} · UAR {scores['uar']:.3f}",
            fontsize=10,
        )
    colorbar = fig.colorbar(image, ax=list(axes), shrink=0.7, pad=0.03)
    colorbar.ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    colorbar.set_label("share of gold class")
    fig.suptitle("MuSe-Topic: relative confusion matrices (cells in %)", fontsize=12)
    return fig


# --- learning curves -----------------------------------------------------------------------------


def _is_loss(name: str) -> bool:
    return name.rsplit("/", 1)[-1].endswith("loss")


def learning_curves(history: dict[str, list[tuple[int, float]]]) -> Figure:
    """Losses (left) and devel metrics (right) against the epoch.

    `history` maps a metric name to its `(epoch, value)` points, e.g. `train/loss`,
    `devel/loss`, `devel/score`, `devel/arousal/ccc`. Every name whose last part ends in
    `loss` goes on the loss axis; every other `devel/` name on the metric axis, where
    `devel/score` (the model-selection metric) is drawn bold with its best epoch marked.
    Other names (training-set metrics, learning rate) are left out: they would crowd the
    axes without helping to judge over- or under-fitting. Both axes always exist; an axis with
    nothing to draw says so.
    """
    if not history:
        raise ValueError("learning curves need a non-empty history")
    losses = sorted(name for name in history if _is_loss(name))
    metrics = sorted(
        (name for name in history if name.startswith("devel/") and not _is_loss(name)),
        # The selection score first, so it leads the legend.
        key=lambda name: (name != "devel/score", name),
    )

    fig = Figure(figsize=(11.0, 4.2), layout="constrained")
    loss_ax, metric_ax = fig.subplots(1, 2)
    for ax, names, title in ((loss_ax, losses, "loss"), (metric_ax, metrics, "devel metrics")):
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, color="0.92")
        if not names:
            ax.text(0.5, 0.5, f"no {title} logged", ha="center", va="center",
                    transform=ax.transAxes, color="0.5")
            ax.set_yticks([])  # a 0..1 scale with nothing on it would read as data
            continue
        for name in names:
            points = sorted(history[name])
            if not points:
                continue
            epochs = [epoch for epoch, _ in points]
            values = [value for _, value in points]
            selection = name == "devel/score"
            ax.plot(epochs, values, marker="o", markersize=3,
                    linewidth=2.4 if selection else 1.3,
                    linestyle="--" if name.startswith("train/") else "-",
                    color="black" if selection else None, label=name)
            finite = [(e, v) for e, v in points if np.isfinite(v)]
            if selection and finite:
                # Earliest epoch among ties: the one a "strictly better" checkpoint keeps.
                best_epoch = max(finite, key=lambda point: (point[1], -point[0]))[0]
                ax.axvline(best_epoch, color="0.6", linestyle=":", linewidth=1.0,
                           label=f"best devel/score (epoch {best_epoch})")
        ax.legend(fontsize=8, frameon=False)
    loss_ax.set_ylabel("loss")
    metric_ax.set_ylabel("value")
    fig.suptitle("Learning curves", fontsize=12)
    return fig
