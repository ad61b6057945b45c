"""train.py and evaluate.py as a user runs them: a muse error is one line and a failing exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.slow  # each test starts train.py or evaluate.py in a new interpreter

ROOT = Path(__file__).parents[1]


def _run(script: str, *overrides: str, full_error: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("HYDRA_FULL_ERROR", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    if full_error:
        env["HYDRA_FULL_ERROR"] = "1"
    return subprocess.run([sys.executable, script, *overrides], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _error_lines(process: subprocess.CompletedProcess, program: str) -> list[str]:
    return [line for line in process.stderr.splitlines() if line.startswith(f"{program}: error:")]


def test_a_corrupt_checkpoint_given_to_evaluate_py_is_one_line(tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"PK\x03\x04 cut short")
    done = _run("evaluate.py", f"ckpt={checkpoint}", f"paths.root_dir={tmp_path}")
    assert done.returncode == 1
    (line,) = _error_lines(done, "evaluate.py")
    assert f"{checkpoint}: not a readable muse checkpoint" in line
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr

    full = _run("evaluate.py", f"ckpt={checkpoint}", f"paths.root_dir={tmp_path}",
                full_error=True)
    assert full.returncode == 1
    assert "Traceback" in full.stderr and "not a readable muse checkpoint" in full.stderr


def test_a_configuration_error_of_train_py_is_one_line_and_no_run(
        demo_stores: dict[str, Path], tmp_path: Path) -> None:
    done = _run("train.py", "features=gaze", f"data.dir={demo_stores['wild'].parent}",
                f"paths.root_dir={tmp_path}")
    assert done.returncode == 1
    (line,) = _error_lines(done, "train.py")
    assert "no feature gaze" in line
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    database = tmp_path / "logs" / "mlflow.db"
    if database.exists():
        client = MlflowClient(f"sqlite:///{database}")
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
