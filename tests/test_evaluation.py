"""Scoring a partition's predictions: labelled rows are scored, masked ones counted and left out."""

from __future__ import annotations

import numpy as np
import pandas as pd

from muse.metrics import official_ccc, round_ccc
from muse.runs.artifacts import summary
from muse.runs.evaluation import Evaluation
from muse.runs.result import RunResult


def _wild(rows: int = 12) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(predictions, gold) of two videos in the submission layout."""
    rng = np.random.default_rng(0)
    keys = pd.DataFrame({"id": np.repeat([3, 8], rows // 2),
                         "timestamp": np.tile(250 * np.arange(rows // 2), 2)})
    gold = keys.assign(label_arousal=rng.normal(size=rows), label_valence=rng.normal(size=rows))
    predictions = keys.assign(prediction_arousal=gold["label_arousal"] + rng.normal(size=rows),
                              prediction_valence=rng.normal(size=rows))
    return predictions, gold


def test_one_missing_devel_label_leaves_the_other_rows_scored(caplog) -> None:
    predictions, gold = _wild()
    gold.loc[4, "label_arousal"] = np.nan  # one unlabelled step of video 3
    evaluation = Evaluation("wild")
    evaluation.add("devel", predictions, gold, ["arousal", "valence"])

    scores = evaluation.scores["devel"]
    assert scores is not None
    assert scores["n_rows"] == 11 and scores["unlabelled_rows"] == 1
    kept = gold.index != 4
    expected = {t: round_ccc(official_ccc(gold.loc[kept, f"label_{t}"],
                                          predictions.loc[kept, f"prediction_{t}"]))
                for t in ("arousal", "valence")}
    assert scores["arousal"]["ccc"] == expected["arousal"]
    assert scores["valence"]["ccc"] == expected["valence"]
    assert scores["score"] == round_ccc((expected["arousal"] + expected["valence"]) / 2)
    assert "devel: 1 of 12 rows have a masked arousal or valence label" in caplog.text
    # What a run logs to MLflow, and what its summary says.
    flat = evaluation.flat_scores("best")
    assert flat["best/devel/score"] == scores["score"]
    assert flat["best/devel/unlabelled_rows"] == 1
    printed = summary(RunResult(run_id="r", experiment="MuSe-Wild", devel=scores, test=None,
                                predictions="p", best_checkpoint="c",
                                tracking_uri="sqlite:///x"))
    assert "1 unlabelled rows not scored" in printed
    # Every prediction is still written, the unlabelled row included.
    assert len(evaluation.predictions["devel"]) == 12


def test_a_partition_without_labels_stays_masked() -> None:
    predictions, gold = _wild()
    gold[["label_arousal", "label_valence"]] = np.nan
    evaluation = Evaluation("wild")
    evaluation.add("test", predictions, gold, ["arousal", "valence"])
    assert evaluation.scores["test"] is None
    assert evaluation.flat_scores("best") == {}


def test_topic_segments_with_a_missing_class_are_left_out() -> None:
    keys = pd.DataFrame({"id": [2, 2, 2, 4, 4], "segment_id": [1, 2, 3, 1, 2]})
    gold = keys.assign(label_arousal=[0, 1, 2, 1, 0], label_valence=[1, 1, -1, 0, 2],
                       label_topic=[3, 3, 5, 5, 9])
    predictions = keys.assign(prediction_arousal=[0, 1, 0, 1, 0],
                              prediction_valence=[1, 1, 0, 0, 2],
                              prediction_topic=[3, 3, 1, 5, 9])
    evaluation = Evaluation("topic")
    evaluation.add("devel", predictions, gold, ["arousal", "valence", "topic"])
    scores = evaluation.scores["devel"]
    # Without segment (2, 3) every prediction is right.
    assert scores["unlabelled_rows"] == 1 and scores["n_rows"] == 4
    assert scores["topic_score"] == scores["emotion_score"] == 100.0
