"""muse.runs.lifecycle: how every kind of run ends in MLflow, from the run's own outcome."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from muse.runs.lifecycle import OpenRun, ended

pytestmark = pytest.mark.slow  # every test needs an MLflow database: seconds to create the first


@pytest.fixture
def client(tracking_db: Path, tmp_path: Path) -> MlflowClient:
    client = MlflowClient(f"sqlite:///{tracking_db}")
    client.create_experiment("lifecycle", artifact_location=str(tmp_path / "artifacts"))
    return client


def open_run(client: MlflowClient, children: int = 0, interrupted: bool = False) -> OpenRun:
    experiment = client.get_experiment_by_name("lifecycle").experiment_id
    run_id = client.create_run(experiment).info.run_id
    kids = {client.create_run(experiment).info.run_id for _ in range(children)}
    logger = SimpleNamespace(run_id=run_id, experiment=client)
    return OpenRun(logger, Path("out"), Path("ckpt"), False, children=lambda: kids,
                   interrupted=lambda: interrupted)


def status(client: MlflowClient, run_id: str) -> str:
    return client.get_run(run_id).info.status


def test_a_run_that_completes_is_finished(client):
    run = open_run(client)
    with ended(run):
        pass
    assert status(client, run.run_id) == "FINISHED"


def test_an_error_fails_the_run_and_its_children_with_the_traceback(client, tmp_path):
    run = open_run(client, children=1)
    with pytest.raises(ValueError, match="broken"), ended(run):
        raise ValueError("broken")
    assert {status(client, r) for r in run.stopped()} == {"FAILED"}
    trace = Path(client.download_artifacts(run.run_id, "traceback.txt", str(tmp_path)))
    assert "ValueError: broken" in trace.read_text()


def test_ctrl_c_kills_the_run(client):
    run = open_run(client, children=1)
    with pytest.raises(KeyboardInterrupt), ended(run):
        raise KeyboardInterrupt
    assert {status(client, r) for r in run.stopped()} == {"KILLED"}


def test_an_interrupted_fit_is_killed_with_the_resume_command(client, capsys):
    run = open_run(client, interrupted=True)
    with pytest.raises(SystemExit), ended(run):
        raise SystemExit(1)  # Lightning's graceful stop after a Ctrl-C
    assert status(client, run.run_id) == "KILLED"
    assert f"Resume with: python train.py <same overrides> ckpt_path={run.run_id}" in (
        capsys.readouterr().out)


def test_an_exit_that_is_no_interruption_fails_the_run(client):
    run = open_run(client)
    with pytest.raises(SystemExit), ended(run):
        raise SystemExit(2)
    assert status(client, run.run_id) == "FAILED"
