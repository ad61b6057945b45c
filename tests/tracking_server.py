"""A real `mlflow server` (SQLite backend, proxied artifact store) on 127.0.0.1 for the tests
that track runs through one (test_tracking_server.py, test_ui_browser.py)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

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


@contextmanager
def tracking_server(home: Path) -> Iterator[dict]:
    """{url, artifacts}: a tracking server as the README starts it, stopped whatever happens."""
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
