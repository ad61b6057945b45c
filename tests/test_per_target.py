"""`model.per_target`: one model per target in one run, child runs, combined scores, resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from composing import compose
from mlflow.tracking import MlflowClient

from muse.package.layout import aggregated_file
from muse.runs.evaluate import evaluate
from muse.runs.tracking import BEST_CHECKPOINT_TAG, PARENT_TAG, TARGET_TAG, mark
from muse.runs.train import train
from muse.scoring import score_files

pytestmark = pytest.mark.slow  # trains three models and resumes one

TARGETS = ["topic", "arousal", "valence"]


def children(client: MlflowClient, run) -> dict[str, object]:
    runs = client.search_runs([run.info.experiment_id],
                              filter_string=f"tags.`{PARENT_TAG}` = '{run.info.run_id}'")
    return {child.data.tags[TARGET_TAG]: child for child in runs}


def test_one_model_per_target(demo_package: Path, demo_stores: dict[str, Path],
                              tmp_path: Path) -> None:
    overrides = [f"data.dir={demo_stores['topic'].parent}", "task=topic", "model.per_target=true",
                 "data.batch_size=8", "model.optimizer.lr=3e-3", "trainer.max_epochs=2",
                 "trainer.enable_progress_bar=false"]
    cfg = compose(*overrides, root=tmp_path)
    result = train(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    kids = children(client, run)
    assert sorted(kids) == sorted(TARGETS)
    best = json.loads(run.data.tags[BEST_CHECKPOINT_TAG])
    for target, child in kids.items():
        assert child.info.status == "FINISHED"
        assert child.info.run_name == f"{run.info.run_name}/{target}"
        assert f"devel/{target}/score" in child.data.metrics  # each model its own target only
        assert not {f"devel/{other}/score" for other in TARGETS if other != target} & set(
            child.data.metrics)
        assert child.data.tags[BEST_CHECKPOINT_TAG] in best
        assert Path(child.data.tags[BEST_CHECKPOINT_TAG]).parent.name == target
        assert "muse.config_hash" not in child.data.tags  # never mistaken for a whole run
    # The run's predictions combine the three models and pass the official scorer.
    devel = Path(result.predictions) / "devel.csv"
    scores = score_files("topic", aggregated_file(demo_package, "topic", "devel"), devel)
    assert scores["topic_score"] == pytest.approx(result.devel["topic_score"])
    assert "best/devel/emotion_score" in run.data.metrics
    evaluated = evaluate(compose(f"run_id={run.info.run_id}",
                                 f"paths.output_dir={tmp_path}/evaluate", name="evaluate",
                                 root=tmp_path))
    assert evaluated["scores"]["devel"] == result.devel

    # Interrupted during the valence model (its run KILLED, a last.ckpt left; a finished fit
    # leaves none): resuming keeps the finished topic and arousal models and continues
    # valence from its last checkpoint.
    mark(client, run.info.run_id, "KILLED")
    mark(client, kids["valence"].info.run_id, "KILLED")
    valence_best = Path(kids["valence"].data.tags[BEST_CHECKPOINT_TAG])
    shutil.copy(valence_best, valence_best.with_name("last.ckpt"))
    done = int(valence_best.stem.split("-")[1]) + 1  # epochs in that checkpoint
    history = {t: len(client.get_metric_history(kids[t].info.run_id, f"devel/{t}/score"))
               for t in TARGETS}
    resumed = train(compose(*overrides[:-2], "trainer.max_epochs=3",
                            "trainer.enable_progress_bar=false",
                            f"ckpt_path={run.info.run_id}", root=tmp_path))
    assert resumed.run_id == run.info.run_id
    assert client.get_run(run.info.run_id).info.status == "FINISHED"
    after = {t: len(client.get_metric_history(kids[t].info.run_id, f"devel/{t}/score"))
             for t in TARGETS}
    assert after == {"topic": history["topic"], "arousal": history["arousal"],
                     "valence": history["valence"] + 3 - done}
    assert sorted(children(client, run)) == sorted(TARGETS)  # no new child runs


def test_a_target_model_is_the_one_a_run_of_that_target_alone_trains(
        demo_stores: dict[str, Path], tmp_path: Path) -> None:
    """Each model starts from the run's seed: the valence model after an arousal model is the
    one a run of valence alone trains, whatever the arousal model drew from the random stream."""
    overrides = [f"data.dir={demo_stores['topic'].parent}", "task=topic", "model.per_target=true",
                 "data.batch_size=8", "trainer.max_epochs=2", "trainer.enable_progress_bar=false"]
    after = train(compose(*overrides, "+model.targets=[arousal,valence]", root=tmp_path / "after"))
    alone = train(compose(*overrides, "+model.targets=[valence]", root=tmp_path / "alone"))

    def valence(result) -> pd.DataFrame:
        frame = pd.read_csv(Path(result.predictions) / "devel.csv")
        return frame[[c for c in frame.columns if "valence" in c or not c.startswith("pred")]]

    assert len(valence(alone).columns) > 2  # keys and the valence prediction
    pd.testing.assert_frame_equal(valence(after), valence(alone))
