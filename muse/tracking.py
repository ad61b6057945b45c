"""MLflow for muse runs: where runs go, what identifies them, and finding one to resume.

Every run lives in its sub-challenge's experiment, is named `<model>-<features>-s<seed>`, and
carries tags the UI can group by (task, model, features, seed), the git commit, the Hydra
override list and a hash of its resolved configuration (which is how an unfinished run with the
same configuration is found again). The resolved configuration is logged as params once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

log = logging.getLogger(__name__)

CONFIG_HASH_TAG = "muse.config_hash"
CHECKPOINT_DIR_TAG = "muse.checkpoint_dir"
BEST_CHECKPOINT_TAG = "muse.best_checkpoint"
# Settings that change where or how fast a run goes, not what it computes.
_NOT_HASHED = ("ckpt_path", "paths", "hydra", "logger", "debug")
_NOT_HASHED_TRAINER = ("enable_progress_bar", "accelerator", "devices")


def resolved(cfg: DictConfig) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    """Nested config -> {"a.b.c": "value"}: MLflow params are flat strings."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    return flat


def config_hash(cfg: DictConfig) -> str:
    """Hash of what the run computes: the resolved config minus paths, logging and resuming."""
    tree = {k: v for k, v in resolved(cfg).items() if k not in _NOT_HASHED}
    trainer = {k: v for k, v in tree.get("trainer", {}).items() if k not in _NOT_HASHED_TRAINER}
    tree["trainer"] = trainer
    tree.get("data", {}).pop("dir", None)
    tree.get("data", {}).pop("num_workers", None)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


def run_name(cfg: DictConfig) -> str:
    return f"{cfg.model.name}-{cfg.features.name}-s{cfg.seed}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def hydra_overrides() -> list[str]:
    """The command-line overrides of this Hydra job ([] outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def run_tags(cfg: DictConfig) -> dict[str, str]:
    tags = {
        "task": cfg.task.name,
        "model": cfg.model.name,
        "features": cfg.features.name,
        "seed": str(cfg.seed),
        "overrides": " ".join(hydra_overrides()),
        CONFIG_HASH_TAG: config_hash(cfg),
    }
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def make_logger(cfg: DictConfig, run_id: str | None = None) -> MLFlowLogger:
    """A Lightning MLflow logger for a new run, or for `run_id` when resuming it."""
    local = not str(cfg.logger.tracking_uri).startswith(("http://", "https://"))
    return MLFlowLogger(
        experiment_name=cfg.task.experiment_name,
        # MLflow's default for a SQLite store is ./mlruns of whatever folder the run started in.
        artifact_location=str(Path(cfg.logger.artifact_location).resolve()) if local else None,
        run_name=run_name(cfg) if run_id is None else None,
        tracking_uri=cfg.logger.tracking_uri,
        tags=run_tags(cfg) if run_id is None else None,
        run_id=run_id,
    )


def log_config(logger: MLFlowLogger, cfg: DictConfig, output_dir: Path) -> None:
    """The resolved config as params (once per run) and as a YAML artifact."""
    logger.log_hyperparams(flatten(resolved(cfg)))
    path = output_dir / "config.yaml"
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    logger.experiment.log_artifact(logger.run_id, str(path))


def unfinished_run(tracking_uri: str, experiment_name: str, digest: str) -> str | None:
    """The newest run of the experiment with this config hash that did not finish."""
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is None:
        return None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{CONFIG_HASH_TAG}` = '{digest}'",
        order_by=["attributes.start_time DESC"],
    )
    for run in runs:
        if run.info.status != "FINISHED":
            return run.info.run_id
    return None


def mark(client: MlflowClient, run_id: str, status: str, traceback: str | None = None) -> None:
    """End a run as FINISHED, FAILED or KILLED, saving the traceback of a crash."""
    if traceback:
        client.log_text(run_id, traceback, "traceback.txt")
    client.set_terminated(run_id, status)


def checkpoint_run_id(path: Path) -> str | None:
    """The run a checkpoint belongs to: muse keeps them in `<log_dir>/checkpoints/<run id>/`."""
    return path.parent.name if path.parent.parent.name == "checkpoints" else None


def ui_command(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri}"
