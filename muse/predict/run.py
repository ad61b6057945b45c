"""The finished run to predict with: its resolved config and best checkpoints, from MLflow.

The checkpoints are the run's best-checkpoint tag, found on this machine or downloaded from
the run's artifacts as `evaluate.py run_id=...` does (`muse.runs.tracking`: one file, or one per
target model); the config is the `config.yaml` every run logs as an artifact (the resolved
Hydra config).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

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


def find_run(run_id: str, tracking_uri: str | None = None,
             log_dir: Path | None = None) -> FinishedRun:
    """The run's config and best checkpoints: PredictError for a missing run or config,
    CheckpointError for missing checkpoints. Checkpoints uploaded with `logger.log_checkpoints`
    are downloaded under `log_dir` (default: logs/ of the root) when the run was trained on
    another machine."""
    log_dir = log_dir or tracking.root_dir() / "logs"
    uri = tracking_uri or tracking.default_tracking_uri()
    client = tracking.open_store(uri)
    try:
        tags = client.get_run(run_id).data.tags
    except MlflowException:
        raise PredictError(f"run {run_id}: no such run in {uri} (--tracking-uri)") from None
    checkpoints = tracking.best_checkpoints_here(
        client, run_id, tags, tracking.downloaded_checkpoints_dir(log_dir, run_id))
    with tempfile.TemporaryDirectory(prefix="muse-predict-config-") as folder, \
            tracking.quiet_downloads():
        try:
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, folder)
        except (MlflowException, OSError) as error:
            raise PredictError(f"run {run_id} has no {CONFIG_ARTIFACT} artifact in {uri}: "
                               f"not a muse training run ({type(error).__name__})") from None
        config = OmegaConf.load(path)
    return FinishedRun(run_id, uri, config, checkpoints)
