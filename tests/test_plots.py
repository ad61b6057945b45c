"""Diagnostic figures: their shape, values read back from them, PNG export, no pyplot leak."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from muse.metrics import classification_scores, official_ccc, round_ccc
from muse.package.layout import TOPIC_NAMES
from muse.runs.plots import (
    SHORT_TOPIC_NAMES,
    confusion_matrices,
    learning_curves,
    prediction_curves,
    relative_confusion,
)


@pytest.fixture(autouse=True)
def _no_open_pyplot_figures():
    """Every test must leave pyplot's figure manager as empty as it found it."""
    assert plt.get_fignums() == []
    yield
    assert plt.get_fignums() == []


def _png_ok(fig: Figure, path: Path) -> None:
    fig.savefig(path)
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _matrix_axes(fig: Figure) -> list:
    """The axes that hold a confusion matrix (the colorbar axis has no image)."""
    return [ax for ax in fig.axes if ax.images]


# --- prediction curves ---------------------------------------------------------------------------


def _continuous_frames(targets: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three videos (ids 9, 2, 5, deliberately unsorted) of 6-8 steps, rows shuffled."""
    rng = np.random.default_rng(3)
    parts = []
    for video, steps in ((9, 6), (2, 8), (5, 7)):
        part = pd.DataFrame({"id": video, "timestamp": np.arange(steps) * 250})
        for target in targets:
            truth = rng.uniform(-1, 1, steps)
            part[f"label_{target}"] = truth
            part[f"prediction_{target}"] = 0.5 * truth + rng.normal(0, 0.3, steps)
        parts.append(part)
    frame = pd.concat(parts).sample(frac=1.0, random_state=0)
    gold = frame[["id", "timestamp"] + [f"label_{t}" for t in targets]]
    predictions = frame[["id", "timestamp"] + [f"prediction_{t}" for t in targets]]
    return gold, predictions


def test_prediction_curves_grid_titles_and_ccc(tmp_path: Path):
    gold, predictions = _continuous_frames(["arousal", "valence"])
    fig = prediction_curves(gold, predictions, "wild", videos=2)

    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # 2 videos x 2 targets
    titles = [ax.get_title() for ax in fig.axes]
    # The first ids in ascending order, whatever the row order: the same videos every epoch.
    assert [t.split(" · ")[0] for t in titles] == ["video 2", "video 2", "video 5", "video 5"]
    assert [t.split(" · ")[1] for t in titles] == ["arousal", "valence"] * 2

    for ax in fig.axes:
        video = int(re.search(r"video (\d+)", ax.get_title()).group(1))
        target = ax.get_title().split(" · ")[1]
        shown = float(re.search(r"CCC (-?\d+\.\d+)", ax.get_title()).group(1))
        rows = gold.merge(predictions, on=["id", "timestamp"])
        rows = rows[rows["id"] == video]
        expected = round_ccc(official_ccc(rows[f"label_{target}"], rows[f"prediction_{target}"]))
        assert shown == pytest.approx(expected, abs=1e-12)
        bottom, top = ax.get_ylim()
        assert bottom <= -1.0 and top >= 1.0
        # x is time in seconds, in order, for both the gold and the predicted line.
        assert len(ax.lines) >= 2
        gold_line = next(line for line in ax.lines if line.get_label() == "gold")
        steps = len(gold[gold["id"] == video])
        assert np.allclose(gold_line.get_xdata(), np.arange(steps) * 0.25)

    assert len(fig.legends) == 1  # once for the figure, never per axis
    assert all(ax.get_legend() is None for ax in fig.axes)
    _png_ok(fig, tmp_path / "curves.png")


def test_prediction_curves_trust_takes_targets_present_in_both(tmp_path: Path):
    gold, predictions = _continuous_frames(["trustworthiness", "arousal"])
    fig = prediction_curves(gold, predictions, "trust", videos=10)  # more than there are
    assert len(fig.axes) == 3 * 2
    assert fig.axes[0].get_title().split(" · ")[1] == "trustworthiness"

    only_trust = prediction_curves(
        gold, predictions.drop(columns="prediction_arousal"), "trust", videos=1
    )
    assert len(only_trust.axes) == 1
    _png_ok(only_trust, tmp_path / "trust.png")


def test_prediction_curves_missing_predictions_are_gaps_not_errors():
    gold, predictions = _continuous_frames(["arousal", "valence"])
    predictions = predictions[predictions["timestamp"] != 500]  # one step of each video missing
    fig = prediction_curves(gold, predictions, "wild", videos=1)
    video = gold[gold["id"] == 2].sort_values("timestamp")
    joined = video.merge(predictions, on=["id", "timestamp"])
    expected = round_ccc(official_ccc(joined["label_arousal"], joined["prediction_arousal"]))
    assert fig.axes[0].get_title().endswith(f"CCC {expected:.4f}")


def test_prediction_curves_rejects_bad_input():
    gold, predictions = _continuous_frames(["trustworthiness"])
    with pytest.raises(ValueError, match="continuous"):
        prediction_curves(gold, predictions, "topic")
    with pytest.raises(ValueError, match="no wild target"):
        prediction_curves(gold, predictions, "wild")
    with pytest.raises(ValueError, match="videos"):
        prediction_curves(gold, predictions, "wild", videos=0)


# --- confusion matrices --------------------------------------------------------------------------


def _topic_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    gold = pd.DataFrame({
        "id": [1, 1, 1, 2, 2, 2],
        "segment_id": [1, 2, 3, 1, 2, 3],
        "label_topic": [0, 0, 3, 3, 3, 9],
        "label_arousal": [0, 0, 1, 1, 2, 2],
        "label_valence": [2, 2, 2, 2, 0, 0],
    })
    predictions = pd.DataFrame({
        "id": [1, 1, 1, 2, 2, 2],
        "segment_id": [1, 2, 3, 1, 2, 3],
        "prediction_topic": [0, 3, 3, 3, 1, 9],
        "prediction_arousal": [0, 1, 1, 1, 0, 2],
        "prediction_valence": [2, 1, 2, 0, 0, 0],
    })
    # Rows in another order: matching must go by (id, segment_id), never by position.
    return gold, predictions.iloc[::-1].reset_index(drop=True)


def test_relative_confusion_by_hand():
    # gold [0, 0, 1, 1, 2, 2], predicted [0, 1, 1, 1, 0, 2]
    #   gold 0: one right, one called 1 -> [1/2, 1/2, 0]
    #   gold 1: both right              -> [0, 1, 0]
    #   gold 2: one called 0, one right -> [1/2, 0, 1/2]
    matrix = relative_confusion(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 0, 2]), 3)
    assert np.array_equal(matrix, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])


def test_confusion_matrices_values_titles_and_labels(tmp_path: Path):
    gold, predictions = _topic_frames()
    fig = confusion_matrices(gold, predictions)

    matrices = _matrix_axes(fig)
    assert [ax.get_title().split(":")[0] for ax in matrices] == ["topic", "arousal", "valence"]

    # topic: gold 0 -> predicted {0, 3}; gold 3 -> {3, 3, 1}; gold 9 -> {9}; others unseen.
    topic = np.ma.filled(matrices[0].images[0].get_array(), np.nan)
    assert topic.shape == (10, 10)
    expected_rows = {0: {0: 1 / 2, 3: 1 / 2}, 3: {3: 2 / 3, 1: 1 / 3}, 9: {9: 1.0}}
    for row in range(10):
        if row in expected_rows:
            want = np.zeros(10)
            for col, share in expected_rows[row].items():
                want[col] = share
            assert np.allclose(topic[row], want)
        else:
            assert np.isnan(topic[row]).all()  # no gold segment of that topic

    # arousal: as in test_relative_confusion_by_hand (same pairs, once matched on the key).
    arousal = np.ma.filled(matrices[1].images[0].get_array(), np.nan)
    assert np.allclose(arousal, [[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]])
    # valence: gold 2 -> predicted {2, 1, 2, 0}; gold 0 -> {0, 0}; gold 1 unseen.
    valence = np.ma.filled(matrices[2].images[0].get_array(), np.nan)
    assert np.allclose(valence[0], [1.0, 0.0, 0.0])
    assert np.isnan(valence[1]).all()
    assert np.allclose(valence[2], [0.25, 0.25, 0.5])

    # Cell annotations are the same values in %.
    cells = {text.get_text() for text in matrices[1].texts}
    assert {"50", "100", "0"} <= cells

    joined = gold.merge(predictions, on=["id", "segment_id"])
    for ax, target in zip(matrices, ["topic", "arousal", "valence"], strict=True):
        scores = classification_scores(joined[f"label_{target}"], joined[f"prediction_{target}"])
        title = ax.get_title()
        assert f"score {scores['score']:.3f}" in title
        assert f"F1 {scores['f1']:.3f}" in title
        assert f"UAR {scores['uar']:.3f}" in title

    topic_ticks = [label.get_text() for label in matrices[0].get_yticklabels()]
    assert topic_ticks == list(SHORT_TOPIC_NAMES)
    assert len(SHORT_TOPIC_NAMES) == len(TOPIC_NAMES)
    emotion_ticks = [label.get_text() for label in matrices[1].get_xticklabels()]
    assert emotion_ticks == ["low", "medium", "high"]
    _png_ok(fig, tmp_path / "confusion.png")


def test_confusion_matrices_only_targets_in_both_frames():
    gold, predictions = _topic_frames()
    fig = confusion_matrices(gold.drop(columns="label_topic"), predictions)
    assert [ax.get_title().split(":")[0] for ax in _matrix_axes(fig)] == ["arousal", "valence"]
    with pytest.raises(ValueError, match="no topic target"):
        confusion_matrices(gold[["id", "segment_id", "label_topic"]],
                           predictions.drop(columns="prediction_topic"))


def test_confusion_matrices_rejects_fractional_classes():
    gold, predictions = _topic_frames()
    predictions["prediction_arousal"] = predictions["prediction_arousal"] + 0.5
    with pytest.raises(ValueError, match="integer classes"):
        confusion_matrices(gold, predictions)


# --- learning curves -----------------------------------------------------------------------------


def test_learning_curves_axes_and_series(tmp_path: Path):
    history = {
        "train/loss": [(0, 1.0), (1, 0.6), (2, 0.4)],
        "devel/loss": [(2, 0.7), (0, 1.1), (1, 0.8)],  # out of order: plotted sorted by epoch
        "devel/score": [(0, 0.1), (1, 0.3), (2, 0.3)],
        "devel/arousal/ccc": [(0, 0.2), (1, 0.4), (2, 0.35)],
        "lr-Adam": [(0, 1e-4), (1, 1e-4), (2, 1e-4)],
    }
    fig = learning_curves(history)
    loss_ax, metric_ax = fig.axes
    assert (loss_ax.get_title(), metric_ax.get_title()) == ("loss", "devel metrics")
    assert loss_ax.get_xlabel() == metric_ax.get_xlabel() == "epoch"

    def series(ax) -> dict[str, tuple[list, list]]:
        return {
            line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
            for line in ax.lines if not line.get_label().startswith("best")
        }

    assert series(loss_ax) == {
        "devel/loss": ([0, 1, 2], [1.1, 0.8, 0.7]),
        "train/loss": ([0, 1, 2], [1.0, 0.6, 0.4]),
    }
    assert set(series(metric_ax)) == {"devel/score", "devel/arousal/ccc"}  # lr left out
    best = [line for line in metric_ax.lines if line.get_label().startswith("best")]
    assert best[0].get_label() == "best devel/score (epoch 1)"  # earliest of the tie
    _png_ok(fig, tmp_path / "learning.png")


def test_learning_curves_without_devel_metrics_still_two_axes():
    fig = learning_curves({"train/loss": [(0, 1.0), (1, 0.5)]})
    assert len(fig.axes) == 2
    assert fig.axes[1].texts[0].get_text() == "no devel metrics logged"
    with pytest.raises(ValueError):
        learning_curves({})


def test_curves_break_where_steps_are_missing() -> None:
    """Steps left out (an advert) leave a gap in the curve rather than a bridging line."""
    timestamps = np.r_[np.arange(0, 2500, 250), np.arange(5000, 7500, 250)]
    gold = pd.DataFrame({"id": 1, "timestamp": timestamps,
                         "label_arousal": np.sin(timestamps / 1000.0),
                         "label_valence": np.cos(timestamps / 1000.0)})
    predicted = gold.rename(columns=lambda c: c.replace("label_", "prediction_"))
    figure = prediction_curves(gold, predicted, "wild", videos=1)
    x = figure.axes[0].lines[0].get_xdata()
    assert len(x) == len(timestamps) + 1
    assert np.isnan(x[10]) and x[9] == 2.25 and x[11] == 5.0
