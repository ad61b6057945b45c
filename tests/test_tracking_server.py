"""The team tracking server: a real `mlflow server` (SQLite backend, proxied artifact store) on
127.0.0.1, a short training sent to it by MLFLOW_TRACKING_URI alone, read back via the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

REPO = Path(__file__).parents[1]
STARTUP_S = 180  # creating the SQLite schema and starting uvicorn, on a busy 2-core machine


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(server: subprocess.Popen) -> None:
    """The server and the workers it started: its own session, so its own process group."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """{url, artifacts}: a tracking server as the README starts it, stopped whatever happens."""
    home = tmp_path_factory.mktemp("tracking_server")
    port, artifacts = _free_port(), home / "artifacts"
    log = (home / "server.log").open("w")
    command = [sys.executable, "-m", "mlflow", "server",
               "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
               "--artifacts-destination", str(artifacts),
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # Without its background job runner (GenAI jobs, trace roll-ups; none of it is used to
    # track runs), which would start eight more Python processes on a 2-core machine.
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
    process = subprocess.Popen(command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not come up:\n{(home / 'server.log').read_text()}")
            time.sleep(1)
        yield {"url": url, "artifacts": artifacts}
    finally:
        _stop(process)
        log.close()


@pytest.fixture(scope="module")
def run(server: dict, demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """`python train.py debug=short` with MLFLOW_TRACKING_URI pointing at the server."""
    root = tmp_path_factory.mktemp("client")
    env = dict(os.environ, MLFLOW_TRACKING_URI=server["url"], HYDRA_FULL_ERROR="1")
    command = [sys.executable, str(REPO / "train.py"), "debug=short", "data.batch_size=8",
               f"paths.root_dir={root}", f"data.dir={demo_stores['wild'].parent}"]
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
    assert found.info.run_name == "lstm_att-ge_ft-s42"
    assert found.data.tags["task"] == "wild"
    assert found.data.params["task.name"] == "wild"
    assert len(client.get_metric_history(found.info.run_id, "devel/score")) == 2
    for key in ("train/loss", "devel/arousal/ccc", "best/devel/score", "best/test/score"):
        assert key in found.data.metrics, key
    assert f"recorded in {server['url']}" in run["output"]
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
