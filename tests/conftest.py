"""Session-wide fixtures (synthetic packages, their HDF5 stores, an empty MLflow database) and
the `slow` marker's rule.

`pytest -m "not slow"` runs the unit tests alone, in under a minute; `pytest` runs every
test, as CI does. A test is `slow` when it trains, imports muse in a new process, or needs data
that takes seconds to build: a session package below (every test that uses one, directly or
through another fixture, is marked here at collection), a module's own package or media, an
MLflow database, a trained run. Files whose tests all are slow say so once
(`pytestmark = pytest.mark.slow`); other files mark their slow tests one by one. A new test
that needs seconds is marked too, or the quick run stops being quick.

Helpers that are no fixtures live beside this file: `composing.compose` (Hydra's compose of
conf/, the tests' one way to build a configuration) and `cli_scoring.score_with_cli`
(`muse score` on a submission, as a user runs it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

TEST_FEATURES = ["egemaps", "lld", "fasttext", "vggface", "au"]
# Building them takes seconds of a quick run's budget: their tests are slow.
SLOW_FIXTURES = {"demo_package", "demo_stores", "learning_package"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def no_shared_tracking_server():
    """Tests never log to a tracking server the developer's environment points at."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(autouse=True)
def no_leaked_tracking_uri():
    """`mlflow.set_tracking_uri` exports MLFLOW_TRACKING_URI: each test names its own store,
    and without the clean-up a test's run would send the runs of the next module's fixtures
    (set up before its function fixtures) to its store."""
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Torch on one intra-op thread for a module of small models: on cores shared with other
    jobs every operation waits for both threads to be scheduled (ALBERT's learning test took
    140 s instead of 11 s with two threads, an MMT test of 30 s took 9 minutes)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def empty_tracking_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its tables and no experiment: MLflow makes the tables in
    dozens of migrations, each committed (seconds on a busy disk); a copy takes milliseconds."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("tracking") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking_db(empty_tracking_db: Path, tmp_path: Path) -> Path:
    """This test's own empty MLflow database, `tmp_path/mlflow.db`."""
    return Path(shutil.copy(empty_tracking_db, tmp_path / "mlflow.db"))


@pytest.fixture(scope="session")
def demo_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic MuSe-CaR package in the official layout (8 videos of about a minute)."""
    from muse.package.synthetic import synthesize

    out = tmp_path_factory.mktemp("package") / "muse2020"
    return synthesize(out, videos=8, minutes=1.0, seed=7, features=TEST_FEATURES)


@pytest.fixture(scope="session")
def demo_stores(demo_package: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The package prepared into one HDF5 store per sub-challenge: {task: path}."""
    from muse.store.prepare import prepare

    return prepare(demo_package, tmp_path_factory.mktemp("data"), tasks=["wild", "topic", "trust"])


@pytest.fixture(scope="session")
def learning_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict]:
    """({task: store}, the package's ceilings) of 24 videos of two minutes, three times the
    session demo: enough for models that start from random weights to learn the planted
    signal (MuSe-Topic: 84 train and 31 devel segments, where the demo has one or two train
    segments per topic)."""
    from muse.package.layout import CEILINGS_FILE
    from muse.package.synthetic import synthesize
    from muse.store.prepare import prepare

    package = synthesize(tmp_path_factory.mktemp("learning") / "muse2020", videos=24, minutes=2.0,
                         seed=7, features=["egemaps", "fasttext", "au"])
    stores = prepare(package, tmp_path_factory.mktemp("learning_data"),
                     tasks=["wild", "topic", "trust"])
    return stores, json.loads((package / CEILINGS_FILE).read_text())
