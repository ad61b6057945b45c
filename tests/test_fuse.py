"""`muse fuse` on tiny runs trained on the synthetic demo: late fusion of an audio and a text
run, a seed ensemble, runs of different stores, MuSe-Topic class probabilities, the scorer, the
report."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow.artifacts
import numpy as np
import pandas as pd
import pytest
from composing import compose
from mlflow.tracking import MlflowClient

from muse.cli import main as muse_main
from muse.errors import FusionError
from muse.package.layout import aggregated_file
from muse.report import report
from muse.runs.fusion.run import fuse_runs
from muse.runs.train import train
from muse.store.prepare import prepare

QUIET = ["trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1"]
LSTM = ["data.batch_size=8", "model.optimizer.lr=3e-3", "data.hop=50"]


def epochs(count: int) -> list[str]:
    """The one place the tests set a member's training length."""
    return [f"trainer.max_epochs={count}"]


class Members:
    """Tiny runs in one tracking store: {name: run id}, trained once for the module."""

    def __init__(self, root: Path, stores: dict[str, Path]) -> None:
        self.root, self.stores, self.ids = root, stores, {}
        self.tracking_uri = f"sqlite:///{root}/logs/mlflow.db"
        self.client = MlflowClient(self.tracking_uri)

    def train(self, name: str, data_dir: Path, *overrides: str) -> None:
        cfg = compose(f"paths.output_dir={self.root}/out/{name}", *QUIET, *overrides,
                      root=self.root, data=data_dir)
        self.ids[name] = train(cfg).run_id

    def run(self, name: str):
        return self.client.get_run(self.ids[name])

    def frame(self, run_id: str, path: str) -> pd.DataFrame:
        local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path,
                                                    tracking_uri=self.tracking_uri)
        return pd.read_csv(local)


@pytest.fixture(scope="module")
def members(demo_package: Path, demo_stores: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> Members:
    made = Members(tmp_path_factory.mktemp("fuse"), demo_stores)
    wild = demo_stores["wild"].parent
    for seed in (1, 2, 3):
        made.train(f"audio{seed}", wild, "task=wild", "features=egemaps", f"seed={seed}",
                   *LSTM, *epochs(1))
    made.train("text", wild, "task=wild", "features=fasttext", "seed=1", *LSTM, *epochs(1))
    # The same package prepared with other options: a store of another fingerprint (and a
    # smaller model, so that it is no seed of the audio runs' configuration).
    other = prepare(demo_package, tmp_path_factory.mktemp("other"), tasks=["wild"],
                    features=["egemaps"], audio_rate=0)["wild"]
    made.train("other_store", other.parent, "task=wild", "features=egemaps", "seed=1",
               "model.encoder.hidden_size=8", *LSTM, *epochs(1))
    topic = demo_stores["topic"].parent
    made.train("topic_lstm", topic, "task=topic", "features=ge_ft", "seed=1", *LSTM,
               "model.per_target=false", *epochs(1))  # one model (the default: three)
    made.train("topic_svm", topic, "task=topic", "model=svm", "seed=1")
    return made


def devel_score(members: Members, run_id: str) -> float:
    return members.client.get_run(run_id).data.metrics["best/devel/score"]


def test_runs_tag_the_fingerprint_of_their_store(members: Members) -> None:
    tags = [members.run(name).data.tags for name in ("audio1", "text", "other_store")]
    assert tags[0]["muse.data_fingerprint"] == tags[1]["muse.data_fingerprint"] != ""
    assert tags[2]["muse.data_fingerprint"] not in ("", tags[0]["muse.data_fingerprint"])


def test_audio_and_text_fused_beat_either_member_on_devel(members: Members) -> None:
    audio, text = members.ids["audio1"], members.ids["text"]
    result = fuse_runs(members.tracking_uri, [audio, text], "weighted", members.root / "logs")
    fused = result.devel["score"]
    assert fused > devel_score(members, audio) and fused > devel_score(members, text)
    run = members.client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "fusion-weighted-egemaps+fasttext"
    assert run.data.tags["model"] == "fusion" and run.data.tags["task"] == "wild"
    assert json.loads(run.data.params["fusion.members"]) == [audio, text]
    assert f"#/experiments/{run.info.experiment_id}/runs/{audio})" in run.data.tags[
        "mlflow.note.content"]
    assert run.data.metrics["best/devel/score"] == fused
    weights = json.loads(run.data.params["fusion.targets.arousal.weights"])
    assert weights[0] > weights[1]  # audio carries arousal
    artifacts = {a.path for a in members.client.list_artifacts(result.run_id, "predictions")}
    assert artifacts == {"predictions/devel.csv", "predictions/test.csv"}
    plots = {a.path for a in members.client.list_artifacts(result.run_id, "plots")}
    assert "plots/devel_curves.png" in plots


@pytest.fixture(scope="module")
def ensemble(members: Members):
    """The seed ensemble `muse fuse --filter ... --seeds` makes of the audio runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MUSE_ROOT", str(members.root))
        code = muse_main(["fuse", "--filter",
                          "tags.task = 'wild' and tags.features = 'egemaps'", "--seeds",
                          "--tracking-uri", members.tracking_uri])
    assert code == 0
    return members.client.search_runs([members.run("audio1").info.experiment_id],
                                      "tags.`muse.fusion.ensemble` = 'true'")


def test_a_seed_ensemble_is_the_mean_of_its_members(members: Members, ensemble) -> None:
    assert len(ensemble) == 1  # the other store's run is another configuration: left out
    ensemble = ensemble[0]
    assert ensemble.info.run_name == "lstm_att-egemaps-ensemble3"
    seeds = [members.ids[f"audio{seed}"] for seed in (1, 2, 3)]
    assert sorted(json.loads(ensemble.data.params["fusion.members"])) == sorted(seeds)
    for partition in ("devel", "test"):
        got = members.frame(ensemble.info.run_id, f"predictions/{partition}.csv")
        frames = [members.frame(run_id, f"predictions/{partition}.csv") for run_id in seeds]
        for target in ("arousal", "valence"):
            expected = np.mean([f[f"prediction_{target}"] for f in frames], axis=0)
            assert np.allclose(got[f"prediction_{target}"], expected, rtol=0, atol=1e-12)


def test_runs_of_different_stores_are_refused(members: Members) -> None:
    experiment = members.run("audio1").info.experiment_id
    before = len(members.client.search_runs([experiment]))
    with pytest.raises(FusionError, match="runs of different stores cannot be fused") as error:
        fuse_runs(members.tracking_uri, [members.ids["audio1"], members.ids["other_store"]],
                  "mean", members.root / "logs")
    assert members.ids["audio1"] in str(error.value)
    assert members.ids["other_store"] in str(error.value)
    assert len(members.client.search_runs([experiment])) == before  # nothing recorded


def test_topic_runs_save_class_probabilities(members: Members) -> None:
    run_id = members.ids["topic_lstm"]
    for partition in ("devel", "test"):
        labels = members.frame(run_id, f"predictions/{partition}.csv")
        chances = members.frame(run_id, f"predictions/{partition}_probabilities.csv")
        assert (chances[["id", "segment_id"]].to_numpy()
                == labels[["id", "segment_id"]].to_numpy()).all()
        for target, classes in (("topic", 10), ("arousal", 3), ("valence", 3)):
            columns = [f"probability_{target}_{k}" for k in range(classes)]
            values = chances[columns].to_numpy()
            assert np.allclose(values.sum(axis=1), 1)
            assert (values.argmax(axis=1) == labels[f"prediction_{target}"]).all()


def test_a_fused_topic_run_scores_through_muse_score(members: Members, demo_package: Path,
                                                     capsys, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        result = fuse_runs(members.tracking_uri,
                           [members.ids["topic_lstm"], members.ids["topic_svm"]], "learned",
                           members.root / "logs")
    # The SVM saves no probabilities: both join by their labels, and muse fuse says so.
    assert "saved no class probabilities" in caplog.text
    run = members.client.get_run(result.run_id)
    assert run.data.params["fusion.classes_from"] == "labels"
    for partition in ("devel", "test"):
        predictions = mlflow.artifacts.download_artifacts(
            run_id=result.run_id, artifact_path=f"predictions/{partition}.csv",
            tracking_uri=members.tracking_uri)
        capsys.readouterr()
        assert muse_main(["score", "--task", "topic", "--predictions", predictions, "--labels",
                          str(aggregated_file(demo_package, "topic", partition))]) == 0
        scores = json.loads(capsys.readouterr().out)
        for key in ("emotion_score", "topic_score"):
            assert scores[key] == run.data.metrics[f"best/{partition}/{key}"]


def test_fused_runs_are_report_rows_without_paper_values(members: Members, ensemble,
                                                        tmp_path) -> None:
    fuse_runs(members.tracking_uri, [members.ids["audio1"], members.ids["text"]], "mean",
              members.root / "logs")
    made = report(members.tracking_uri, ["MuSe-Wild"], tmp_path / "report")
    rows = {row.system: row for row in made.tables[0].rows}
    fusion = rows["Fusion (mean): LSTM + Self-Att (Ge) | LSTM + Self-Att (FT)"]
    assert fusion.features_label == "Ge + FT" and fusion.paper_value("devel", "score") is None
    assert fusion.cell("devel", "score").n == 1
    seeds = rows["LSTM + Self-Att (3-seed ensemble)"]
    assert seeds.features_label == "Ge" and seeds.paper_value("devel", "score") is None
    assert rows["LSTM + Self-Att"].paper_value("devel", "score") is not None


def test_muse_fuse_errors_are_one_line(members: Members, capsys) -> None:
    uri = ["--tracking-uri", members.tracking_uri]
    assert muse_main(["fuse", members.ids["audio1"], *uri]) == 1
    assert "muse fuse: error: fusion needs two runs or more" in capsys.readouterr().err
    assert muse_main(["fuse", members.ids["audio1"], "nosuchrun", *uri]) == 1
    assert "run nosuchrun: no such run" in capsys.readouterr().err
    assert muse_main(["fuse", "--filter", "tags.task = 'trust'", "--seeds", *uri]) == 1
    assert "no configuration has two finished seeds" in capsys.readouterr().err
