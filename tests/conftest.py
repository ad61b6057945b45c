"""Session-wide fixtures: one tiny synthetic package and its prepared HDF5 stores for all tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_FEATURES = ["egemaps", "lld", "fasttext", "vggface", "au"]


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
