"""The team tracking server: a real `mlflow server` (SQLite backend, proxied artifact store) on
127.0.0.1, a short training sent to it by MLFLOW_TRACKING_URI alone, read back via the server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tracking_server import tracking_server

REPO = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """{url, artifacts}: a tracking server as the README starts it, stopped whatever happens."""
    with tracking_server(tmp_path_factory.mktemp("tracking_server")) as started:
        yield started


@pytest.fixture(scope="module")
def run(server: dict, demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """`python train.py debug=short` with MLFLOW_TRACKING_URI pointing at the server."""
    root = tmp_path_factory.mktemp("client")
    env = dict(os.environ, MLFLOW_TRACKING_URI=server["url"], HYDRA_FULL_ERROR="1")
    command = [sys.executable, str(REPO / "train.py"), "debug=short", "data.batch_size=8",
               f"paths.root_dir={root}", f"data.dir={demo_stores['wild'].parent}",
               "logger.log_checkpoints=true"]
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    client = MlflowClient(tracking_uri=server["url"])
    experiment = client.get_experiment_by_name("MuSe-Wild")
    (found,) = client.search_runs([experiment.experiment_id])
    return {"root": root, "client": client, "run": found, "output": done.stdout}


def test_the_run_is_recorded_by_the_server(run, server) -> None:
    found, client = run["run"], run["client"]
    assert found.info.status == "FINISHED"
    assert found.info.run_name == "lstm_att-ge_ft-s42 debug=short batch_size=8"
    assert found.data.tags["task"] == "wild"
    assert found.data.params["task.name"] == "wild"
    assert len(client.get_metric_history(found.info.run_id, "devel/score")) == 2
    for key in ("train/loss", "devel/arousal/ccc", "best/devel/score", "best/test/score"):
        assert key in found.data.metrics, key
    assert f"recorded in {server['url']}" in run["output"]
    # The link it prints opens the experiment's runs table (test_ui_browser.py looks at it).
    assert (f"look at it: open {server['url']}/#/experiments/{found.info.experiment_id}/runs?"
            "workflowType=machine_learning&viewStateShareKey=muse-scores") in run["output"]
    # Nothing went to a local store beside the client.
    assert not (run["root"] / "logs" / "mlflow.db").exists()
    assert not (run["root"] / "mlruns").exists()


def test_artifacts_go_through_the_server_to_its_store(run, server, tmp_path) -> None:
    found, client = run["run"], run["client"]
    run_id = found.info.run_id
    assert found.info.artifact_uri.startswith("mlflow-artifacts:/")
    listed = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "scores.json", "predictions", "plots"} <= listed
    assert {a.path for a in client.list_artifacts(run_id, "predictions")} == {
        "predictions/devel.csv", "predictions/test.csv"}
    # They live in the server's artifact directory, not in the client's logs/.
    stored = {p.relative_to(server["artifacts"]).as_posix()
              for p in server["artifacts"].rglob("*") if p.is_file()}
    assert any(p.endswith(f"{run_id}/artifacts/scores.json") for p in stored), stored
    assert not (run["root"] / "logs" / "artifacts").exists()
    # And come back through the server with the scores the run logged.
    scores = json.loads(Path(client.download_artifacts(run_id, "scores.json", str(tmp_path)))
                        .read_text())
    assert scores["devel"]["score"] == pytest.approx(found.data.metrics["best/devel/score"])


def test_another_machine_evaluates_the_run_from_its_uploaded_checkpoint(
        run, server, demo_stores: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`logger.log_checkpoints=true`: the best checkpoint is among the run's artifacts, and
    `evaluate.py run_id=...` on a machine without the trainer's disk downloads and scores it."""
    from hydra import compose, initialize_config_dir

    from muse.runs.evaluate import evaluate

    found, client = run["run"], run["client"]
    run_id = found.info.run_id
    best = Path(found.data.tags["muse.best_checkpoint"])
    assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == [
        f"checkpoints/{best.name}"]
    best.rename(best.with_suffix(".elsewhere"))  # the trainer's disk is not this machine's
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", server["url"])
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose("evaluate", overrides=[
                f"run_id={run_id}", f"paths.root_dir={tmp_path}",
                f"paths.output_dir={tmp_path}/out", f"data_dir={demo_stores['wild'].parent}"])
        result = evaluate(cfg)
    finally:
        best.with_suffix(".elsewhere").rename(best)
    fetched = Path(result["checkpoint"])
    assert fetched.is_file() and fetched.is_relative_to(tmp_path / "logs" / "checkpoints" / run_id)
    assert result["scores"]["devel"]["score"] == pytest.approx(
        found.data.metrics["best/devel/score"], abs=1e-4)


def test_another_machine_predicts_with_the_uploaded_checkpoint(run, server, tmp_path: Path) -> None:
    """`muse predict --run` finds the run's checkpoint as evaluate.py does: on a machine without
    the trainer's disk, the copy uploaded with `logger.log_checkpoints` is downloaded."""
    from muse.predict.run import find_run

    found = run["run"]
    best = Path(found.data.tags["muse.best_checkpoint"])
    trained = best.read_bytes()
    best.rename(best.with_suffix(".elsewhere"))
    try:
        located = find_run(found.info.run_id, server["url"], log_dir=tmp_path / "logs")
    finally:
        best.with_suffix(".elsewhere").rename(best)
    (fetched,) = located.checkpoints
    assert fetched.is_relative_to(tmp_path / "logs" / "checkpoints" / found.info.run_id)
    assert fetched.read_bytes() == trained
    assert located.task == "wild"


def test_a_checkpoint_neither_here_nor_uploaded_is_named(run, tmp_path: Path) -> None:
    from muse.errors import CheckpointError
    from muse.runs.tracking import best_checkpoints_here

    found = run["run"]
    tags = dict(found.data.tags, **{"muse.best_checkpoint": str(tmp_path / "gone.ckpt")})
    with pytest.raises(CheckpointError, match=r"gone\.ckpt is not on this machine nor among"):
        best_checkpoints_here(run["client"], found.info.run_id, tags, tmp_path / "dl")
    with pytest.raises(CheckpointError, match="did not finish training"):
        best_checkpoints_here(run["client"], found.info.run_id, {}, tmp_path / "dl")
    assert not (tmp_path / "dl").exists()
