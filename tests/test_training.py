"""The harness end to end: train.py's function on the tiny demo stores, MLflow, resume, evaluate."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_scoring import score_with_cli
from composing import compose
from mlflow.tracking import MlflowClient

from muse.errors import MuseError
from muse.module import MuseModule
from muse.runs.builders import run_lock
from muse.runs.evaluate import evaluate
from muse.runs.train import train

pytestmark = pytest.mark.slow  # every test trains on the demo stores or reads a run that did

ROOT = Path(__file__).parents[1]
# A process that trains a run, as far as its lock goes: holds it until its stdin closes.
HOLD_RUN_LOCK = """import sys
from pathlib import Path
from muse.locks import training
with training(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""
# Small, fast and still learning: a few short epochs with a larger step than the paper's.
QUICK = ["data.batch_size=8", "model.optimizer.lr=3e-3",
         "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1"]


@pytest.fixture(scope="session")
def wild_run(demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("wild_run")
    cfg = compose(*QUICK, "trainer.max_epochs=4", root=root, data=demo_stores["wild"].parent)
    return cfg, train(cfg)


@pytest.mark.parametrize("task", ["wild", "trust", "topic"])
def test_fast_dev_run_every_task(demo_stores: dict[str, Path], tmp_path: Path, task: str) -> None:
    cfg = compose(f"task={task}", "debug=fast", root=tmp_path, data=demo_stores[task].parent)
    result = train(cfg)
    assert result.fast_dev_run
    assert not (tmp_path / "logs").exists()  # a smoke run records nothing


def test_a_run_is_recorded_in_mlflow(wild_run) -> None:
    cfg, result = wild_run
    client = MlflowClient(cfg.logger.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "lstm_att-ge_ft-s42"
    assert client.get_experiment(run.info.experiment_id).name == "MuSe-Wild"
    tags = run.data.tags
    assert {tags["task"], tags["model"], tags["features"], tags["seed"]} == {
        "wild", "lstm_att", "ge_ft", "42"}
    assert "git_commit" in tags and "muse.config_hash" in tags
    params = run.data.params
    assert params["model.encoder.hidden_size"] == "40" and params["task.name"] == "wild"
    assert json.loads(params["features.names"]) == ["egemaps", "fasttext"]
    metrics = run.data.metrics
    for key in ("train/loss", "devel/score", "devel/arousal/ccc", "devel/valence/ccc",
                "best/devel/score", "best/test/score"):
        assert key in metrics, key
    assert len(client.get_metric_history(run.info.run_id, "devel/score")) == 4
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"predictions", "plots", "config.yaml", "scores.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/devel_curves.png", "plots/learning_curves.png"}


def test_a_run_says_when_it_trained_on_the_synthetic_demo(
        wild_run, demo_package: Path, tmp_path: Path, capsys) -> None:
    cfg, result = wild_run  # the session's stores, prepared from a package: not the demo
    client = MlflowClient(cfg.logger.tracking_uri)
    tags = client.get_run(result.run_id).data.tags
    assert tags["muse.synthetic_demo"] == "false" and not result.synthetic_demo
    assert tags["muse.data"].endswith("wild.h5")

    data = tmp_path / "data"
    shutil.copytree(demo_package, data / "synthetic_package")  # as `muse demo` generates it
    capsys.readouterr()
    demo = train(compose(*QUICK, "trainer.max_epochs=1", root=tmp_path, data=data))
    assert "synthetic demo" in capsys.readouterr().out
    demo_tags = MlflowClient(f"sqlite:///{tmp_path}/logs/mlflow.db").get_run(
        demo.run_id).data.tags
    assert demo_tags["muse.synthetic_demo"] == "true" and demo.synthetic_demo


def test_best_devel_score_matches_the_logged_checkpoint_metric(wild_run) -> None:
    cfg, result = wild_run
    client = MlflowClient(cfg.logger.tracking_uri)
    history = client.get_metric_history(result.run_id, "devel/score")
    best_epoch_score = max(m.value for m in history)
    assert result.devel["score"] == pytest.approx(best_epoch_score, abs=1e-3)


def test_submission_csv_passes_the_scorer(wild_run, demo_package: Path, capsys) -> None:
    _, result = wild_run
    test_csv = Path(result.predictions) / "test.csv"
    frame = pd.read_csv(test_csv)
    assert list(frame.columns) == ["id", "timestamp", "prediction_arousal", "prediction_valence"]
    assert not frame.isna().any().any()
    scored = score_with_cli("wild", test_csv, demo_package, capsys)
    assert scored["score"] == result.test["score"]


def test_evaluate_reproduces_the_logged_devel_score(wild_run, tmp_path: Path) -> None:
    cfg, result = wild_run
    eval_cfg = compose(f"run_id={result.run_id}", f"paths.output_dir={tmp_path}",
                       name="evaluate", root=Path(cfg.paths.root_dir))
    evaluated = evaluate(eval_cfg)
    assert evaluated["scores"]["devel"] == result.devel
    assert (tmp_path / "test.csv").exists()
    client = MlflowClient(cfg.logger.tracking_uri)
    metrics = client.get_run(result.run_id).data.metrics
    assert metrics["evaluate/devel/score"] == result.devel["score"]
    assert "submission" in {a.path for a in client.list_artifacts(result.run_id)}


def test_interrupted_run_resumes_from_last_into_the_same_run(
        demo_stores: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    overrides = [*QUICK, "trainer.max_epochs=3"]  # interrupted after 2, resumed for the 3rd
    cfg = compose(*overrides, root=tmp_path, data=demo_stores["wild"].parent)

    def interrupt_after_second_epoch(self) -> None:
        if self.current_epoch == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(MuseModule, "on_train_epoch_end", interrupt_after_second_epoch,
                      raising=False)
        with pytest.raises(SystemExit):
            train(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name("MuSe-Wild").experiment_id])
    (killed,) = runs
    assert killed.info.status == "KILLED"

    # While a live process trains the run (its RUNNING status, its lock), it is not resumed.
    client.update_run(killed.info.run_id, status="RUNNING")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_RUN_LOCK, str(run_lock(cfg, killed.info.run_id)),
         killed.info.run_id], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MuseError, match=rf"run {killed.info.run_id} is still training in "
                                            rf"another process \(pid {holder.pid} on "):
            train(compose(*overrides, "ckpt_path=last", root=tmp_path,
                          data=demo_stores["wild"].parent))
    finally:
        holder.kill()  # kill -9: its lock goes with it, the run stays RUNNING in MLflow
        holder.wait()
    assert client.get_run(killed.info.run_id).info.status == "RUNNING"

    result = train(compose(*overrides, "ckpt_path=last", root=tmp_path,
                           data=demo_stores["wild"].parent))
    assert result.run_id == killed.info.run_id
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    epochs = sorted({int(m.value) for m in client.get_metric_history(result.run_id, "epoch")})
    assert epochs[-1] == 2
    assert len(client.get_metric_history(result.run_id, "devel/score")) == 3


def test_a_crash_is_marked_failed_with_its_traceback(
        demo_stores: dict[str, Path], tmp_path: Path, monkeypatch) -> None:
    cfg = compose(*QUICK, "trainer.max_epochs=2", root=tmp_path, data=demo_stores["wild"].parent)

    def crash(self) -> None:
        raise RuntimeError("boom in epoch end")

    monkeypatch.setattr(MuseModule, "on_train_epoch_end", crash, raising=False)
    with pytest.raises(RuntimeError, match="boom"):
        train(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("MuSe-Wild").experiment_id])
    assert run.info.status == "FAILED"
    text = Path(client.download_artifacts(run.info.run_id, "traceback.txt", str(tmp_path)))
    assert "boom in epoch end" in text.read_text()


def test_a_configuration_error_leaves_no_failed_run(
        demo_stores: dict[str, Path], tmp_path: Path) -> None:
    cfg = compose(*QUICK, "features=gaze", root=tmp_path,  # not stored
                  data=demo_stores["wild"].parent)
    with pytest.raises(MuseError, match=r"wild\.h5: no feature gaze in `label_aligned`"):
        train(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    experiment = client.get_experiment_by_name("MuSe-Wild")
    assert experiment is None or not client.search_runs([experiment.experiment_id])


def test_resume_without_an_unfinished_run_is_a_clear_error(
        demo_stores: dict[str, Path], tmp_path: Path) -> None:
    cfg = compose(*QUICK, "ckpt_path=last", root=tmp_path,  # fresh logs
                  data=demo_stores["wild"].parent)
    with pytest.raises(MuseError, match="no unfinished MuSe-Wild run"):
        train(cfg)


def test_evaluate_a_checkpoint_file_finds_its_run(wild_run, tmp_path: Path) -> None:
    cfg, result = wild_run
    eval_cfg = compose(f"ckpt={result.best_checkpoint}", f"paths.output_dir={tmp_path}",
                       name="evaluate", root=Path(cfg.paths.root_dir))
    evaluated = evaluate(eval_cfg)
    assert evaluated["run_id"] == result.run_id
    assert evaluated["scores"]["devel"] == result.devel


def test_a_corrupt_checkpoint_is_a_named_error(wild_run, tmp_path: Path) -> None:
    cfg, result = wild_run
    whole = Path(result.best_checkpoint).read_bytes()
    for name, content in (("truncated.ckpt", whole[: len(whole) // 2]),
                          ("notes.ckpt", b"not a checkpoint"), ("empty.ckpt", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        eval_cfg = compose(f"ckpt={path}", f"paths.output_dir={tmp_path}/out",
                           name="evaluate", root=Path(cfg.paths.root_dir))
        with pytest.raises(MuseError, match=rf"{name}: not a readable muse checkpoint"):
            evaluate(eval_cfg)
    assert not (tmp_path / "out").exists()
