"""The official scorer on hand-built label/prediction CSVs, and `muse score` on top of it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from muse.cli import main
from muse.errors import ScoringError
from muse.metrics import official_ccc, round_ccc
from muse.scoring import score_files, score_frames


def _wild_labels(videos: int = 3, steps: int = 20, seed: int = 0) -> pd.DataFrame:
    """Aggregated Wild labels: smooth random walks per video, keyed by (id, timestamp)."""
    rng = np.random.default_rng(seed)
    rows = []
    for video in (4, 17, 30)[:videos]:
        arousal = np.cumsum(rng.normal(scale=0.1, size=steps))
        valence = np.cumsum(rng.normal(scale=0.1, size=steps))
        for step in range(steps):
            rows.append((video, 250 * step, arousal[step], valence[step]))
    return pd.DataFrame(rows, columns=["id", "timestamp", "label_arousal", "label_valence"])


def _as_predictions(labels: pd.DataFrame) -> pd.DataFrame:
    return labels.rename(columns=lambda c: c.replace("label_", "prediction_"))


def _topic_labels() -> pd.DataFrame:
    rows = [
        (video, segment, (video + segment) % 3, (video * segment) % 3, (video + 2 * segment) % 10)
        for video in (2, 5, 9)
        for segment in range(1, 11)
    ]
    return pd.DataFrame(
        rows, columns=["id", "segment_id", "label_arousal", "label_valence", "label_topic"]
    )


def _write(tmp_path, labels: pd.DataFrame, predictions: pd.DataFrame):
    labels_path, predictions_path = tmp_path / "devel.csv", tmp_path / "predictions.csv"
    labels.to_csv(labels_path, index=False)
    predictions.to_csv(predictions_path, index=False)
    return labels_path, predictions_path


def _match(labels: pd.DataFrame, predictions: pd.DataFrame, target: str) -> np.ndarray:
    """The prediction for each label row, by key (the concatenation of every video)."""
    indexed = predictions.set_index(["id", "timestamp"])[f"prediction_{target}"]
    return indexed.loc[list(zip(labels["id"], labels["timestamp"], strict=True))].to_numpy()


# --- scores ------------------------------------------------------------------------------------


def test_wild_perfect_predictions_follow_the_official_mix(tmp_path):
    labels = _wild_labels()
    result = score_files("wild", *_write(tmp_path, labels, _as_predictions(labels)))
    n = len(labels)
    # Identical series score (N-1)/N under the official variance/covariance mix.
    assert result["n_rows"] == n
    assert result["arousal"] == {"ccc": round_ccc((n - 1) / n), "pearson": 1.0, "mae": 0.0}
    assert result["score"] == round_ccc((n - 1) / n)
    json.dumps(result)


def test_wild_perfect_predictions_on_a_full_size_partition_score_one():
    # Above 20 000 rows (N-1)/N rounds to 1.0000, as for a real partition.
    labels = pd.DataFrame({"id": 1, "timestamp": 250 * np.arange(20_001)})
    labels["label_arousal"] = np.sin(np.arange(20_001) / 50)
    labels["label_valence"] = np.cos(np.arange(20_001) / 70)
    result = score_frames("wild", labels, _as_predictions(labels))
    assert result["arousal"]["ccc"] == result["valence"]["ccc"] == result["score"] == 1.0


def test_wild_score_is_rounded_mean_and_uses_all_rows(tmp_path):
    labels = _wild_labels()
    predictions = _as_predictions(labels)
    rng = np.random.default_rng(5)
    predictions["prediction_arousal"] += rng.normal(scale=0.1, size=len(labels))
    predictions["prediction_valence"] = 0.5 * predictions["prediction_valence"] + 0.1
    # Extra columns are ignored and columns are found by name, in any order.
    predictions["note"] = "x"
    predictions = predictions[predictions.columns[::-1]].sample(frac=1.0, random_state=0)
    result = score_files("wild", *_write(tmp_path, labels, predictions))
    expected = {
        target: round_ccc(
            official_ccc(labels[f"label_{target}"], _match(labels, predictions, target))
        )
        for target in ("arousal", "valence")
    }
    assert result["arousal"]["ccc"] == expected["arousal"]
    assert result["valence"]["ccc"] == expected["valence"]
    assert result["score"] == round((expected["arousal"] + expected["valence"]) / 2, 4)


def test_constant_and_shuffled_predictions(tmp_path):
    labels = _wild_labels(steps=60)
    constant = _as_predictions(labels).assign(prediction_arousal=0.2, prediction_valence=-0.1)
    result = score_files("wild", *_write(tmp_path, labels, constant))
    assert result["arousal"]["ccc"] == result["valence"]["ccc"] == result["score"] == 0.0

    shuffled = _as_predictions(labels)
    rng = np.random.default_rng(3)
    for column in ("prediction_arousal", "prediction_valence"):
        shuffled[column] = rng.permutation(shuffled[column].to_numpy())
    perfect = score_frames("wild", labels, _as_predictions(labels))["score"]
    assert score_frames("wild", labels, shuffled)["score"] < perfect - 0.5


def test_pearson_and_mae_beside_each_ccc_over_the_concatenated_rows(tmp_path, capsys):
    # Two videos of two rows: labels 0, 1 | 2, 3 and predictions 0, 2 | 2, 5, concatenated.
    labels = pd.DataFrame({"id": [1, 1, 2, 2], "timestamp": [0, 250, 0, 250],
                           "label_arousal": [0.0, 1.0, 2.0, 3.0],
                           "label_valence": [1.0, 0.0, 1.0, 0.0]})
    predictions = pd.DataFrame({"id": [2, 2, 1, 1], "timestamp": [250, 0, 250, 0],
                                "prediction_arousal": [5.0, 2.0, 2.0, 0.0],
                                "prediction_valence": [0.5, 0.5, 0.5, 0.5]})
    # By hand: centred labels -1.5 -0.5 0.5 1.5, centred predictions -2.25 -0.25 -0.25 2.75,
    # r = 7.5 / sqrt(5 * 12.75) = 0.93934; MAE = (0 + 1 + 0 + 2) / 4.
    code = main(["score", "--task", "wild", "--labels", str(_write(tmp_path, labels,
                                                                    predictions)[0]),
                 "--predictions", str(tmp_path / "predictions.csv")])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["arousal"]["pearson"] == 0.9393
    assert printed["arousal"]["mae"] == 0.75
    # A constant prediction has no correlation (0, as its CCC), and is 0.5 off everywhere.
    assert printed["valence"] == {"ccc": 0.0, "pearson": 0.0, "mae": 0.5}


def test_trust_score_is_the_trustworthiness_ccc():
    labels = _wild_labels().rename(columns={"label_arousal": "label_trustworthiness"})
    labels = labels.drop(columns="label_valence")
    predictions = _as_predictions(labels)
    predictions["prediction_trustworthiness"] *= 0.8
    result = score_frames("trust", labels, predictions)
    expected = round_ccc(official_ccc(labels["label_trustworthiness"], predictions.iloc[:, 2]))
    # A scaled copy correlates perfectly; it is off by a fifth of each label.
    mae = round(float((0.2 * labels["label_trustworthiness"].abs()).mean()), 4)
    assert result == {
        "task": "trust", "n_rows": len(labels),
        "trustworthiness": {"ccc": expected, "pearson": 1.0, "mae": mae}, "score": expected,
    }


def test_topic_perfect_and_float_classes(tmp_path):
    labels = _topic_labels()
    predictions = _as_predictions(labels).astype({"prediction_topic": float})
    result = score_files("topic", *_write(tmp_path, labels, predictions))
    for target in ("topic", "arousal", "valence"):
        assert result[target] == {"f1": 100.0, "uar": 100.0, "score": 100.0}
    assert result["emotion_score"] == result["topic_score"] == 100.0


def test_topic_imperfect_scores(tmp_path):
    labels = _topic_labels()
    predictions = _as_predictions(labels)
    predictions["prediction_topic"] = 0  # one class for all: F1 = share of class 0
    predictions["prediction_arousal"] = (predictions["prediction_arousal"] + 1) % 3
    result = score_files("topic", *_write(tmp_path, labels, predictions))
    share = (labels["label_topic"] == 0).mean()
    classes = labels["label_topic"].nunique()
    assert result["topic"]["f1"] == round(100 * share, 3)
    assert result["topic"]["uar"] == round(100 / classes, 3)
    assert result["arousal"] == {"f1": 0.0, "uar": 0.0, "score": 0.0}
    assert result["emotion_score"] == round((0.0 + result["valence"]["score"]) / 2, 3)


# --- errors ------------------------------------------------------------------------------------


def test_missing_keys_are_counted_and_listed(tmp_path):
    labels = _wild_labels()
    predictions = _as_predictions(labels).drop(index=[0, 1, 2, 3, 4, 5, 6])
    with pytest.raises(ScoringError) as caught:
        score_files("wild", *_write(tmp_path, labels, predictions))
    message = str(caught.value)
    assert "predictions.csv" in message and "7 missing key(s)" in message
    assert "(id, timestamp)" in message and "(4, 0)" in message and "(4, 1000)" in message
    assert "(4, 1500)" not in message  # at most 5 listed
    assert "extra" not in message


def test_extra_keys_are_counted_and_listed(tmp_path):
    labels = _wild_labels()
    predictions = _as_predictions(labels)
    predictions.loc[len(predictions)] = [99, 0, 0.0, 0.0]
    with pytest.raises(ScoringError, match=r"1 extra key\(s\).*\(99, 0\)"):
        score_files("wild", *_write(tmp_path, labels, predictions))


def test_missing_column_names_column_and_file(tmp_path):
    labels = _topic_labels()
    predictions = _as_predictions(labels).drop(columns=["prediction_topic", "segment_id"])
    with pytest.raises(ScoringError, match=r"predictions\.csv lacks column\(s\) segment_id, "
                                           r"prediction_topic"):
        score_files("topic", *_write(tmp_path, labels, predictions))


def test_nan_prediction_is_an_error_naming_the_key(tmp_path):
    labels = _wild_labels()
    predictions = _as_predictions(labels)
    predictions.loc[3, "prediction_valence"] = np.nan
    with pytest.raises(ScoringError, match=r"prediction_valence has 1 empty.*\(4, 750\)"):
        score_files("wild", *_write(tmp_path, labels, predictions))


def test_fractional_topic_class_and_duplicate_key_are_errors():
    labels = _topic_labels()
    predictions = _as_predictions(labels).astype({"prediction_arousal": float})
    predictions.loc[0, "prediction_arousal"] = 1.5
    with pytest.raises(ScoringError, match=r"prediction_arousal must hold integer classes"):
        score_frames("topic", labels, predictions)
    duplicated = pd.concat([_as_predictions(labels), _as_predictions(labels).head(2)])
    with pytest.raises(ScoringError, match=r"2 duplicated key\(s\).*\(2, 1\)"):
        score_frames("topic", labels, duplicated)


def test_unreadable_csv_names_the_file(tmp_path):
    labels_path, _ = _write(tmp_path, _wild_labels(), _wild_labels())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for bad in (empty, tmp_path / "absent.csv"):
        with pytest.raises(ScoringError, match=f"cannot read {bad}"):
            score_files("wild", labels_path, bad)


# --- the command -------------------------------------------------------------------------------


def test_cli_prints_json(tmp_path, capsys):
    labels = _wild_labels()
    labels_path, predictions_path = _write(tmp_path, labels, _as_predictions(labels))
    code = main([
        "score", "--task", "wild", "--labels", str(labels_path),
        "--predictions", str(predictions_path),
    ])
    assert code == 0
    assert json.loads(capsys.readouterr().out) == score_files("wild", labels_path, predictions_path)


def test_cli_reports_a_bad_file(tmp_path, capsys):
    labels = _wild_labels()
    labels_path, predictions_path = _write(tmp_path, labels, _as_predictions(labels).head(10))
    code = main([
        "score", "--task", "wild", "--labels", str(labels_path),
        "--predictions", str(predictions_path),
    ])
    captured = capsys.readouterr()
    assert code != 0 and captured.out == ""
    assert captured.err.startswith("muse score: error:")
    assert "predictions.csv" in captured.err and "50 missing key(s)" in captured.err
