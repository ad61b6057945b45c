"""MLflow for muse runs: where runs go, what identifies them, and finding one to resume.

Every run lives in its sub-challenge's experiment (a model-training experiment, made with the
saved view `muse-scores` of the runs table), is named `<model>-<features>-s<seed>` plus the
overrides that tell it apart (`muse.runs.naming`), records the store it read as its datasets,
and carries tags the UI can group by (task, model, features, seed; a trial of an Optuna search:
its study and trial), the git commit, the Hydra override list and a hash of its resolved
configuration (which is how an unfinished run with the same configuration is found again, and
how a sweep knows a configuration already finished). The resolved configuration is logged as
params once. A new SQLite tracking database is created (and an old one upgraded) by one
process at a time (`open_store`), so that trainings started together cannot break it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import instantiate
from mlflow.data.dataset_source_registry import get_dataset_source_from_json
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput, InputTag, Run
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import MLFlowLogger

from muse.errors import CheckpointError
from muse.locks import exclusive
from muse.runs import naming
from muse.store.reader import fingerprint, package_source
from muse.tasks import ALL_PARTITIONS

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
FINGERPRINT_TAG = "muse.data_fingerprint"  # that store's prepare fingerprint (muse fuse checks it)
# MLflow's own: what the experiment is for. The UI reads it; 3.17 still opens an experiment on
# its GenAI overview unless the link says `workflowType=machine_learning` (`runs_table_url`).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
# A saved view of the runs table is an experiment tag `mlflow.sharedViewState.<id>` holding
# {name, createdAt, updatedAt, state}, `state` the view as JSON (MLflow UI 3.17); a link opens
# it with `viewStateShareKey=<id>`.
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
VIEW_ID = "muse-scores"
VIEW_COLUMNS = ("attributes.`Dataset`", "metrics.`best/devel/score`", "metrics.`best/test/score`",
                "tags.`task`", "tags.`model`", "tags.`features`", "tags.`seed`")
# Where `logger.log_checkpoints` uploads a run's best checkpoint(s) among its artifacts.
CHECKPOINT_ARTIFACTS = "checkpoints"
# Keys of conf/logger that are muse's own options, not arguments of the Lightning logger.
MUSE_LOGGER_OPTIONS = ("system_metrics", "system_metrics_interval_s", "log_checkpoints")
# Settings that change where or how fast a run goes, not what it computes.
MODULE_NODE = "model.module"  # conf/model/_lightning.yaml: the LightningModule around the model
_NOT_HASHED = ("ckpt_path", "skip_finished", "paths", "hydra", "logger", "debug")
_NOT_HASHED_TRAINER = ("enable_progress_bar", "accelerator", "devices")
# Callbacks: which class and where it writes change nothing the run computes, nor does the
# exception checkpoint. Left out, the hashes equal those of the runs recorded before callbacks
# had their own `_target_` files, so `skip_finished` still finds those runs.
_NOT_HASHED_CALLBACKS = ("on_exception",)
_NOT_HASHED_CALLBACK_KEYS = ("_target_", "dirpath", "filename", "auto_insert_metric_name")


SQLITE = "sqlite:///"
LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default
DIGEST_SHOWN = 16  # characters of a store's fingerprint a dataset digest keeps (MLflow: <= 36)


def root_dir() -> Path:
    """Where muse keeps logs/: $MUSE_ROOT, else the current directory (as conf/paths does)."""
    return Path(os.environ.get("MUSE_ROOT") or Path.cwd())


def default_tracking_uri() -> str:
    """Where train.py records runs: $MLFLOW_TRACKING_URI, else logs/mlflow.db of the root."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return uri or f"{SQLITE}{(root_dir() / 'logs' / 'mlflow.db').resolve()}"


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


def _store_exists(tracking_uri: str) -> bool:
    """False for a SQLite store whose file is not there yet (any other store: True)."""
    uri = str(tracking_uri)
    return not uri.startswith(SQLITE) or Path(uri[len(SQLITE):]).is_file()


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


def config_params(cfg: DictConfig) -> dict[str, str]:
    """The resolved config as flat MLflow params. Of `model.module` only its class: the rest
    interpolates the model's own encoder and optimizer, which would otherwise show twice."""
    return {key: value for key, value in flatten(resolved(cfg)).items()
            if not key.startswith(f"{MODULE_NODE}.") or key == f"{MODULE_NODE}._target_"}


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
    """`<model>-<features>-s<seed>` and the overrides that tell the run apart (naming)."""
    return naming.run_name(cfg.model.name, cfg.features.name, cfg.seed, hydra_overrides(),
                           config_hash(cfg))


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
    """The Lightning logger of conf/logger (`_target_`) for a new run, or for `run_id` when
    resuming it; the run-time facts it leaves `null` (the experiment, the run, its name and
    tags, where a local store keeps artifacts) are filled here, and only here.

    With `parent_id`, the run is the child run of one target of a per-target run: it holds
    that target model's epochs, and none of the tags sweeps and reports look runs up by.
    """
    open_store(cfg.logger.tracking_uri)  # the store is ready before Lightning's logger opens it
    artifacts = _artifact_location(cfg)
    if run_id is None:
        ensure_experiment(cfg.logger.tracking_uri, cfg.task.experiment_name, artifacts)
    if parent_id is None:
        name, tags = run_name(cfg), run_tags(cfg)
    else:
        name = f"{run_name(cfg)}/{target}"
        tags = {PARENT_TAG: parent_id, TARGET_TAG: str(target), "task": cfg.task.name}
    node = {key: value for key, value in resolved(cfg.logger).items()
            if key not in MUSE_LOGGER_OPTIONS}
    facts = {"experiment_name": cfg.task.experiment_name, "run_id": run_id,
             "artifact_location": artifacts,
             "run_name": name if run_id is None else None,
             "tags": tags if run_id is None else None}
    return instantiate(node, **facts)


def _artifact_location(cfg: DictConfig) -> str | None:
    """Where a new experiment of a local store keeps artifacts (a server decides itself)."""
    if str(cfg.logger.tracking_uri).startswith(("http://", "https://")):
        return None
    # MLflow's default for a SQLite store is ./mlruns of whatever folder the run started in.
    return str(Path(cfg.logger.artifact_location).resolve())


def ensure_experiment(tracking_uri: str, name: str, artifact_location: str | None) -> str:
    """The experiment's id, created (a model-training experiment with the saved view
    `muse-scores`) unless it exists: the parallel jobs of a sweep race to it."""
    store = open_store(tracking_uri)
    view = f"{VIEW_TAG_PREFIX}{VIEW_ID}"
    experiment = store.get_experiment_by_name(name)
    if experiment is None:
        try:
            store.create_experiment(name, artifact_location=artifact_location,
                                    tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING,
                                          view: saved_view()})
        except MlflowException:
            if store.get_experiment_by_name(name) is None:  # not another job's creation
                raise
        experiment = store.get_experiment_by_name(name)
    if view not in experiment.tags:  # an experiment made before muse saved the view
        try:
            store.set_experiment_tag(experiment.experiment_id, view, saved_view())
        except MlflowException:
            # Two jobs adding the same tag at once: one insert loses (a unique key, or SQLite's
            # lock). The other job's tag is the same view.
            if view not in store.get_experiment(experiment.experiment_id).tags:
                raise
    return experiment.experiment_id


def saved_view() -> str:
    """The runs table's view `muse-scores`: the scores, dataset and grouping tags side by
    side, best devel score first."""
    state = {"selectedColumns": list(VIEW_COLUMNS),
             "orderByKey": "metrics.`best/devel/score`", "orderByAsc": False}
    now = int(time.time() * 1000)
    return json.dumps({"name": "muse: scores", "createdAt": now, "updatedAt": now,
                       "state": json.dumps(state)})


def runs_table_url(base_url: str, experiment_id: str | None) -> str:
    """The link that opens the experiment's runs table in its `muse-scores` view."""
    base = base_url.rstrip("/")
    if experiment_id is None:
        return f"{base}/#/experiments?workflowType=machine_learning"
    return (f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&viewStateShareKey={VIEW_ID}")


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
    """Which store the run trained on (its path and prepare fingerprint), and whether it is the
    synthetic demo's."""
    client.set_tag(run_id, DATA_TAG, str(Path(store).resolve()))
    client.set_tag(run_id, DEMO_TAG, str(demo).lower())
    client.set_tag(run_id, FINGERPRINT_TAG, fingerprint(store) or "")


def log_datasets(client: MlflowClient, run_id: str, store: Path) -> None:
    """The store as the run's datasets, one per partition (context train, devel, test): named
    by the store file and partition, the digest its `muse prepare` fingerprint, the source the
    package it was prepared from (the store itself for stores older than that record).

    One dataset per partition because MLflow keeps one input per dataset and run."""
    store = Path(store).resolve()
    digest = fingerprint(store) or ""
    source = package_source(store) or str(store)
    local = get_dataset_source_from_json(json.dumps({"uri": source}), source_type="local")
    inputs = []
    for partition in ALL_PARTITIONS:
        dataset = MetaDataset(local, name=f"{store.name}/{partition}",
                              digest=digest[:DIGEST_SHOWN] or None)
        inputs.append(DatasetInput(dataset._to_mlflow_entity(),
                                   [InputTag(MLFLOW_DATASET_CONTEXT, partition)]))
    try:
        client.log_inputs(run_id, inputs)
    except MlflowException:
        # The jobs of a sweep log the same store at once: MLflow looks the dataset up, then
        # inserts it, so the job whose insert comes second fails. Now it is there: log again.
        client.log_inputs(run_id, inputs)


def record_best_checkpoints(client: MlflowClient, run_id: str, paths: list[str],
                            upload: bool) -> str:
    """The run's best-checkpoint tag, and with `upload` (`logger.log_checkpoints`) the files
    among its artifacts (`checkpoints/`; per target `checkpoints/<target>/`), so that a
    machine without this one's disk can evaluate the run (`fetch_checkpoints`)."""
    value = join_checkpoints(paths)
    client.set_tag(run_id, BEST_CHECKPOINT_TAG, value)
    if upload:
        for path in filter(None, paths):  # "": no epoch was kept
            client.log_artifact(run_id, path, _checkpoint_artifact_dir(paths, path))
    return value


def _checkpoint_artifact_dir(paths: list[str], path: str) -> str:
    """muse keeps a target's checkpoints in `<run id>/<target>/`: its folder names it."""
    if len(paths) == 1:
        return CHECKPOINT_ARTIFACTS
    return f"{CHECKPOINT_ARTIFACTS}/{Path(path).parent.name}"


def fetch_checkpoints(client: MlflowClient, run_id: str, paths: list[str],
                      destination: Path) -> list[Path] | None:
    """The run's best checkpoints (`paths`, as its tag names them) downloaded from its
    artifacts into `destination`; None when they were not uploaded."""
    wanted = [f"{_checkpoint_artifact_dir(paths, path)}/{Path(path).name}" for path in paths]
    folders = {name.rsplit("/", 1)[0] for name in wanted}
    uploaded = {item.path for folder in folders for item in client.list_artifacts(run_id, folder)}
    if not wanted or not set(wanted) <= uploaded:
        return None
    destination.mkdir(parents=True, exist_ok=True)
    return [Path(client.download_artifacts(run_id, name, str(destination))) for name in wanted]


def best_checkpoints_here(client: MlflowClient, run_id: str, tags: dict[str, str],
                          download_dir: Path) -> list[Path]:
    """The run's best checkpoints (one per model of the run) as files on this machine: where
    training wrote them, else the copies uploaded with `logger.log_checkpoints`, downloaded
    into `download_dir`. A CheckpointError saying what is missing when neither is to be had."""
    best = split_checkpoints(tags.get(BEST_CHECKPOINT_TAG, ""))
    if not best:
        raise CheckpointError(f"run {run_id} has no best checkpoint: it did not finish training")
    if all(Path(path).is_file() for path in best):
        return [Path(path) for path in best]
    fetched = fetch_checkpoints(client, run_id, best, download_dir)
    if fetched is None:
        missing = ", ".join(path for path in best if not Path(path).is_file())
        raise CheckpointError(f"run {run_id}: its best checkpoint {missing} is not on this "
                              "machine nor among its artifacts (train with "
                              "logger.log_checkpoints=true to upload it)")
    return fetched


def downloaded_checkpoints_dir(log_dir: Path, run_id: str) -> Path:
    """Where a run's uploaded checkpoints are downloaded to on a machine that lacks them."""
    return log_dir / "checkpoints" / run_id


@contextlib.contextmanager
def quiet_downloads() -> Iterator[None]:
    """No MLflow progress bar while muse downloads a run's few small artifacts (configs,
    predictions); the setting before is restored after."""
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


def log_config(logger: MLFlowLogger, cfg: DictConfig, output_dir: Path) -> None:
    """The resolved config as params (once per run) and as a YAML artifact."""
    logger.log_hyperparams(config_params(cfg))
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


def ui_command(tracking_uri: str, experiment: str | None = None) -> str:
    """How to look at a store's runs: the link of `experiment`'s runs table (`runs_table_url`),
    after the `mlflow ui` command that serves a local store."""
    experiment_id = None
    # Only a store that exists is asked: a link must not create a SQLite file as a side effect.
    if experiment is not None and _store_exists(tracking_uri):
        found = open_store(tracking_uri).get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found is not None else None
    if tracking_uri.startswith(("http://", "https://")):
        return f"open {runs_table_url(tracking_uri, experiment_id)}"
    return (f"mlflow ui --backend-store-uri {tracking_uri}, then open "
            f"{runs_table_url(LOCAL_UI, experiment_id)}")
