"""Every neural baseline learns the demo at its defaults (`python train.py task=... model=...`),
and the normalisation those defaults include is what makes the LSTM learn at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_module import FEATURES, fit, learning_package  # noqa: F401  (a module fixture)
from test_training import config, own_tracking_uri  # noqa: F401  (an autouse fixture)

from muse.data.datamodule import MuseDataModule
from muse.training import train

QUIET = ["trainer.enable_progress_bar=false"]
# Devel task scores of a model that learned nothing: CCC 0; topic, the majority class's mean
# of topic and emotion scores is below 25 (tests/test_module.py: majority_score).
LEARNED = {"wild": 0.2, "trust": 0.2, "topic": 40.0}


def task_score(task: str, devel: dict) -> float:
    if task == "topic":
        return (devel["topic_score"] + devel["emotion_score"]) / 2
    return devel["score"]


@pytest.mark.parametrize(("task", "model", "extra"), [
    ("wild", "lstm_att", []),
    ("trust", "lstm_att", []),
    # The audio CNN costs seconds a batch on a CPU: three of its at most 30 epochs.
    ("wild", "e2e", ["trainer.max_epochs=3"]),
])
def test_defaults_learn_the_demo(demo_stores: dict[str, Path], tmp_path: Path, task: str,
                                 model: str, extra: list[str]) -> None:
    cfg = config(tmp_path, demo_stores[task].parent, f"task={task}", f"model={model}",
                 *QUIET, *extra)
    assert cfg.data.normalize
    result = train(cfg)
    assert task_score(task, result["devel"]) >= LEARNED[task], result["devel"]


def test_topic_defaults_learn_a_package_with_enough_segments(
        learning_package, tmp_path: Path) -> None:  # noqa: F811
    """The session demo has 9 devel segments; the learning package about 25 of 10 topics."""
    stores, _ = learning_package
    cfg = config(tmp_path, stores["topic"].parent, "task=topic", "model=lstm_att", *QUIET)
    result = train(cfg)
    assert task_score("topic", result["devel"]) >= LEARNED["topic"], result["devel"]


def test_unnormalised_lstm_fails_where_the_normalised_one_learns(learning_package):  # noqa: F811
    """Raw descriptors span five orders of magnitude (formants in Hz next to jitter)."""
    stores, ceilings = learning_package
    settings = dict(batch_size=8, hop=10, eval_window=50)
    normalised = MuseDataModule(stores["wild"], "wild", FEATURES, **settings)
    raw = MuseDataModule(stores["wild"], "wild", FEATURES, normalize=False, **settings)
    ceiling = (ceilings["wild"]["devel"]["arousal"] + ceilings["wild"]["devel"]["valence"]) / 2
    assert fit(normalised, epochs=5, lr=1e-3)["devel/score"] >= 0.4 * ceiling
    assert fit(raw, epochs=5, lr=1e-3)["devel/score"] < 0.1 * ceiling
