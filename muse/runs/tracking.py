"""MLflow for muse runs: where runs go, what identifies them, and finding one to resume.

Every run lives in its sub-challenge's experiment, is named `<model>-<features>-s<seed>`, and
carries tags the UI can group by (task, model, features, seed; a trial of an Optuna search:
its study and trial), the git commit, the Hydra override list and a hash of its resolved
configuration (which is how an unfinished run with the same configuration is found again, and
how a sweep knows a configuration already finished). The resolved configuration is logged as
params once. A new SQLite tracking database is created (and an old one upgraded) by one
process at a time (`open_store`), so that trainings started together cannot break it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

from muse.locks import exclusive

log = logging.getLogger(__name__)

CONFIG_HASH_TAG = "muse.config_hash"
# The layout of the config the hash is computed over, hashed with it and tagged on every run.
# 2: training settings in trainer/, data/ and callbacks/ instead of model/, the datamodule and
# the module built from `_target_` nodes. The same settings then resolve to another tree, so a
# hash is compared only within one layout; a run finished under an earlier one (no tag) is
# reported when its configuration trains again (`earlier_layout_runs`).
CONFIG_LAYOUT = 2
CONFIG_LAYOUT_TAG = "muse.config_layout"
CHECKPOINT_DIR_TAG = "muse.checkpoint_dir"
BEST_CHECKPOINT_TAG = "muse.best_checkpoint"
PARENT_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests a child run under its parent
TARGET_TAG = "muse.target"
STUDY_TAG = "study"  # a trial of an Optuna search (muse.search): its study and trial number
TRIAL_TAG = "trial"
DATA_TAG = "muse.data"  # the store a run trained on
DEMO_TAG = "muse.synthetic_demo"  # "true" when that store is the built-in synthetic demo's
# Settings that change where or how fast a run goes, not what it computes.
_NOT_HASHED = ("ckpt_path", "skip_finished", "paths", "hydra", "logger", "debug")
_NOT_HASHED_TRAINER = ("enable_progress_bar", "accelerator", "devices")
# Callbacks: which class and where it writes change nothing the run computes, nor does the
# exception checkpoint. Left out, the hashes equal those of the runs recorded before callbacks
# had their own `_target_` files, so `skip_finished` still finds those runs.
_NOT_HASHED_CALLBACKS = ("on_exception",)
_NOT_HASHED_CALLBACK_KEYS = ("_target_", "dirpath", "filename", "auto_insert_metric_name")


SQLITE = "sqlite:///"


def open_store(tracking_uri: str) -> MlflowClient:
    """A client of the tracking store, whose tables exist and are up to date.

    MLflow creates or migrates a SQLite database's tables when a process first opens it; two
    processes doing so at once break the file for good (`table _alembic_tmp_experiments
    already exists`). A lock beside the database file makes them take turns.
    """
    if not str(tracking_uri).startswith(SQLITE):
        return MlflowClient(tracking_uri)
    database = Path(str(tracking_uri)[len(SQLITE):])
    with exclusive(database.with_name(f"{database.name}.lock")):
        return MlflowClient(tracking_uri)  # opening the store creates or migrates its tables


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
    """Hash of what the run computes: the resolved config minus paths, logging and resuming,
    within its layout (`CONFIG_LAYOUT`)."""
    tree = {k: v for k, v in resolved(cfg).items() if k not in _NOT_HASHED}
    tree["config_layout"] = CONFIG_LAYOUT
    trainer = {k: v for k, v in tree.get("trainer", {}).items() if k not in _NOT_HASHED_TRAINER}
    tree["trainer"] = trainer
    if "callbacks" in tree:
        tree["callbacks"] = {
            name: {k: v for k, v in node.items() if k not in _NOT_HASHED_CALLBACK_KEYS}
            for name, node in tree["callbacks"].items() if name not in _NOT_HASHED_CALLBACKS}
    tree.get("data", {}).pop("dir", None)
    tree.get("data", {}).pop("num_workers", None)
    # As for the callbacks: the class that builds the data or the module is the code's, not
    # the run's setting.
    tree.get("data", {}).pop("_target_", None)
    tree.get("model", {}).get("module", {}).pop("_target_", None)
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
        CONFIG_LAYOUT_TAG: str(CONFIG_LAYOUT),
    }
    if cfg.get("study"):  # the trial number is tagged by the search, which knows it
        tags[STUDY_TAG] = str(cfg.study)
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def make_logger(cfg: DictConfig, run_id: str | None = None, parent_id: str | None = None,
                target: str | None = None) -> MLFlowLogger:
    """A Lightning MLflow logger for a new run, or for `run_id` when resuming it.

    With `parent_id`, the run is the child run of one target of a per-target run: it holds
    that target model's epochs, and none of the tags sweeps and reports look runs up by.
    """
    open_store(cfg.logger.tracking_uri)  # the store is ready before Lightning's logger opens it
    local = not str(cfg.logger.tracking_uri).startswith(("http://", "https://"))
    # MLflow's default for a SQLite store is ./mlruns of whatever folder the run started in.
    artifacts = str(Path(cfg.logger.artifact_location).resolve()) if local else None
    if run_id is None:
        ensure_experiment(cfg.logger.tracking_uri, cfg.task.experiment_name, artifacts)
    if parent_id is None:
        name, tags = run_name(cfg), run_tags(cfg)
    else:
        name = f"{run_name(cfg)}/{target}"
        tags = {PARENT_TAG: parent_id, TARGET_TAG: str(target), "task": cfg.task.name}
    return MLFlowLogger(
        experiment_name=cfg.task.experiment_name,
        artifact_location=artifacts,
        run_name=name if run_id is None else None,
        tracking_uri=cfg.logger.tracking_uri,
        tags=tags if run_id is None else None,
        run_id=run_id,
    )


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> None:
    """Create the experiment unless it exists: the parallel jobs of a sweep race to it."""
    store = open_store(tracking_uri)
    if store.get_experiment_by_name(name) is not None:
        return
    try:
        store.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        if store.get_experiment_by_name(name) is None:  # not another job's creation
            raise


@dataclass
class ChildRun:
    """What an earlier attempt left of one target's child run (run_id None: there is none)."""

    run_id: str | None = None
    finished: bool = False
    best_checkpoint: str = ""


def child_run(cfg: DictConfig, parent_id: str, target: str) -> ChildRun:
    """The child run of `target` under `parent_id`, when the parent run is being resumed."""
    runs = _newest_runs(
        cfg.logger.tracking_uri, cfg.task.experiment_name,
        f"tags.`{PARENT_TAG}` = '{parent_id}' and tags.`{TARGET_TAG}` = '{target}'",
    )
    if not runs:
        return ChildRun()
    best = runs[0].data.tags.get(BEST_CHECKPOINT_TAG, "")
    return ChildRun(runs[0].info.run_id, runs[0].info.status == "FINISHED",
                    best if best and Path(best).is_file() else "")


def join_checkpoints(paths: list[str]) -> str:
    """The best-checkpoint tag of a run: one path, or a JSON list (one model per target)."""
    return paths[0] if len(paths) == 1 else json.dumps(paths)


def split_checkpoints(value: str) -> list[str]:
    """The inverse of `join_checkpoints` ([] for an empty tag)."""
    if not value:
        return []
    return [str(path) for path in json.loads(value)] if value.startswith("[") else [value]


def tag_data(client: MlflowClient, run_id: str, store: Path, demo: bool) -> None:
    """Which store the run trained on, and whether it is the synthetic demo's."""
    client.set_tag(run_id, DATA_TAG, str(Path(store).resolve()))
    client.set_tag(run_id, DEMO_TAG, str(demo).lower())


def log_config(logger: MLFlowLogger, cfg: DictConfig, output_dir: Path) -> None:
    """The resolved config as params (once per run) and as a YAML artifact."""
    logger.log_hyperparams(flatten(resolved(cfg)))
    path = output_dir / "config.yaml"
    path.write_text(OmegaConf.to_yaml(cfg, resolve=True))
    logger.experiment.log_artifact(logger.run_id, str(path))


def _newest_runs(tracking_uri: str, experiment_name: str, filter_string: str) -> list[Run]:
    """The experiment's runs that match the filter, newest first ([] without the experiment)."""
    store = open_store(tracking_uri)
    experiment = store.get_experiment_by_name(experiment_name)
    if experiment is None:
        return []
    return store.search_runs([experiment.experiment_id], filter_string=filter_string,
                              order_by=["attributes.start_time DESC"])


def _runs_with_hash(tracking_uri: str, experiment_name: str, digest: str) -> list[Run]:
    """The experiment's runs with this config hash, newest first."""
    return _newest_runs(tracking_uri, experiment_name, f"tags.`{CONFIG_HASH_TAG}` = '{digest}'")


def unfinished_run(tracking_uri: str, experiment_name: str, digest: str) -> str | None:
    """The newest run of the experiment with this config hash that did not finish."""
    for run in _runs_with_hash(tracking_uri, experiment_name, digest):
        if run.info.status != "FINISHED":
            return run.info.run_id
    return None


def finished_run(tracking_uri: str, experiment_name: str, digest: str) -> Run | None:
    """The newest run of the experiment with this config hash that finished."""
    for run in _runs_with_hash(tracking_uri, experiment_name, digest):
        if run.info.status == "FINISHED":
            return run
    return None


def earlier_layout_runs(tracking_uri: str, experiment_name: str, name: str) -> list[Run]:
    """The experiment's FINISHED runs named `name` whose config hash belongs to an earlier
    config layout, so that no hash of today's configs can equal theirs (newest first)."""
    runs = _newest_runs(tracking_uri, experiment_name,
                        f"attributes.run_name = '{name}' and attributes.status = 'FINISHED'")
    return [run for run in runs if CONFIG_HASH_TAG in run.data.tags
            and run.data.tags.get(CONFIG_LAYOUT_TAG) != str(CONFIG_LAYOUT)]


def best_scores(run: Run) -> dict[str, dict]:
    """A run's logged best-epoch scores per partition, nested as `Evaluation.scores` is.

    The inverse of `Evaluation.flat_scores("best")`: `best/devel/score` -> devel["score"],
    `best/devel/arousal/ccc` -> devel["arousal"]["ccc"].
    """
    scores: dict[str, dict] = {}
    for key, value in run.data.metrics.items():
        parts = key.split("/")
        if len(parts) < 3 or parts[0] != "best":
            continue
        node = scores.setdefault(parts[1], {})
        for part in parts[2:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return scores


def mark(client: MlflowClient, run_id: str, status: str, traceback: str | None = None) -> None:
    """End a run as FINISHED, FAILED or KILLED, saving the traceback of a crash."""
    if traceback:
        client.log_text(run_id, traceback, "traceback.txt")
    client.set_terminated(run_id, status)


def checkpoint_run_id(path: Path) -> str | None:
    """The run a checkpoint belongs to: muse keeps them in `<log_dir>/checkpoints/<run id>/`
    (one model per target: `<run id>/<target>/`)."""
    for folder in (path.parent, path.parent.parent):
        if folder.parent.name == "checkpoints":
            return folder.name
    return None


def ui_command(tracking_uri: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {tracking_uri} in a browser"
    return f"mlflow ui --backend-store-uri {tracking_uri}"
