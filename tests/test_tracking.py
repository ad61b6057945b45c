"""The tracking store and run locks: what keeps concurrent muse processes from breaking a run."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from muse.runs import tracking

pytestmark = pytest.mark.slow  # two processes create an MLflow database at once


def _create_experiment(uri: str, artifacts: str, start: multiprocessing.Barrier,
                       errors: multiprocessing.Queue) -> None:
    start.wait()  # both processes open the new database at the same moment
    try:
        tracking.ensure_experiment(uri, "MuSe-Wild", artifacts)
        errors.put(None)
    except Exception as error:  # what the other process did to the file
        errors.put(repr(error))


def test_two_trainings_started_at_once_create_one_sound_database(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")  # no re-import: both start in milliseconds
    for attempt in range(3):
        uri = f"sqlite:///{tmp_path}/{attempt}/logs/mlflow.db"
        start, errors = context.Barrier(2), context.Queue()
        workers = [context.Process(target=_create_experiment,
                                   args=(uri, str(tmp_path / "artifacts"), start, errors))
                   for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        assert [worker.exitcode for worker in workers] == [0, 0]
        assert [errors.get(timeout=5) for _ in workers] == [None, None]
        experiments = tracking.open_store(uri).search_experiments()
        assert [e.name for e in experiments if e.name != "Default"] == ["MuSe-Wild"]
