"""The finished run to predict with: its resolved config and best checkpoints, from MLflow.

The checkpoints are the run's best-checkpoint tag, as `evaluate.py run_id=...` reads it
(`muse.runs.tracking`: one file, or one per target model); the config is the `config.yaml`
every run logs as an artifact (the resolved Hydra config).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from muse.predict.errors import PredictError
from muse.runs import tracking

CONFIG_ARTIFACT = "config.yaml"


@dataclass(frozen=True)
class FinishedRun:
    """A run with a best checkpoint on this machine (one per model of a per-target run)."""

    run_id: str
    tracking_uri: str
    config: DictConfig
    checkpoints: list[Path]

    @property
    def task(self) -> str:
        return str(self.config.task.name)


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """MLflow draws a progress bar for every download; one small config file needs none."""
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    saved = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved


def find_run(run_id: str, tracking_uri: str | None = None) -> FinishedRun:
    """The run's config and best checkpoints; PredictError when either is not to be had."""
    uri = tracking_uri or tracking.default_tracking_uri()
    client = tracking.open_store(uri)
    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException:
        raise PredictError(f"run {run_id}: no such run in {uri} (--tracking-uri)") from None
    checkpoints = [Path(p) for p in
                   tracking.split_checkpoints(tags.get(tracking.BEST_CHECKPOINT_TAG, ""))]
    if not checkpoints:
        raise PredictError(f"run {run_id} has no best checkpoint: it did not finish training")
    missing = [str(path) for path in checkpoints if not path.is_file()]
    if missing:
        raise PredictError(f"run {run_id}: its best checkpoint {', '.join(missing)} is not on "
                           "this machine")
    with tempfile.TemporaryDirectory(prefix="muse-predict-config-") as folder, \
            _no_progress_bar():
        try:
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, folder)
        except (MlflowException, OSError) as error:
            raise PredictError(f"run {run_id} has no {CONFIG_ARTIFACT} artifact in {uri}: "
                               f"not a muse training run ({type(error).__name__})") from None
        config = OmegaConf.load(path)
    return FinishedRun(run_id, uri, config, checkpoints)
