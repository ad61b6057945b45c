"""The finished run to predict with: its resolved config and best checkpoints, from MLflow.

The checkpoints are found as `evaluate.py run_id=...` finds them (`muse.runs.evaluate`); the
config is the `config.yaml` every run logs as an artifact (the resolved Hydra config).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from omegaconf import DictConfig, OmegaConf

from muse.predict.errors import PredictError
from muse.runs import tracking
from muse.runs.evaluate import locate_checkpoints

CONFIG_ARTIFACT = "config.yaml"


def default_tracking_uri() -> str:
    """Where train.py records runs: $MLFLOW_TRACKING_URI, else logs/mlflow.db here."""
    return os.environ.get("MLFLOW_TRACKING_URI") or (
        f"{tracking.SQLITE}{(Path.cwd() / 'logs' / 'mlflow.db').resolve()}")


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


def find_run(run_id: str, tracking_uri: str | None = None) -> FinishedRun:
    """The run's config and best checkpoints; PredictError when either is not to be had."""
    uri = tracking_uri or default_tracking_uri()
    lookup = OmegaConf.create({"run_id": run_id, "ckpt": None, "logger": {"tracking_uri": uri}})
    checkpoints, _ = locate_checkpoints(lookup)
    client = tracking.open_store(uri)
    with tempfile.TemporaryDirectory(prefix="muse-predict-config-") as folder:
        try:
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, folder)
        except (MlflowException, OSError) as error:
            raise PredictError(f"run {run_id} has no {CONFIG_ARTIFACT} artifact in {uri}: "
                               f"not a muse training run ({type(error).__name__})") from None
        config = OmegaConf.load(path)
    return FinishedRun(run_id, uri, config, checkpoints)
