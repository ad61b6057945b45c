"""The finished training runs of MLflow experiments as one tidy frame: a row per run.

Each row says which system (model tag, plus the targets it learned when they differ from
what the sub-challenge scores), which feature sets and which seed produced it, and carries
the best checkpoint's official scores (`best/<partition>/<metric>`, see
`muse.runs.evaluation.Evaluation.flat_scores`) as columns named `<partition>/<metric>`. Only
FINISHED runs count; of several runs of the same system, features and seed the newest wins;
the child runs of a per-target run (one model per target) are left to their parent, which
holds the combined scores. A fused run (`muse fuse`, tag `model=fusion`) is a system of its
own: `<system> (N-seed ensemble)` for a seed ensemble, `Fusion (<method>): <member systems>`
otherwise, read from the members it records (tag `muse.fusion.members`); the paper published
no fusion, so its paper column stays empty.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from muse.errors import MuseError
from muse.runs.fusion.tags import ENSEMBLE_TAG, FUSION_MODEL, MEMBERS_TAG, METHOD_TAG
from muse.tasks import TASKS

log = logging.getLogger(__name__)

EXPERIMENTS = ("MuSe-Wild", "MuSe-Topic", "MuSe-Trust")
BEST_PREFIX = "best/"
# `system` tells fused runs apart (a fused run's model is always `fusion`).
IDENTITY = ["task", "model", "system", "targets", "features", "seed"]

# The paper's names for the systems, in the order its tables list them.
MODEL_NAMES = {
    "lstm_att": "LSTM + Self-Att",
    "e2e": "End2You",
    "e2e_multitask": "End2You-Multitask",
    "mmt": "MMT",
    "albert": "Albert",
    "svm": "SVM",
}


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` tracking URI (None for any other store)."""
    prefix = "sqlite:///"
    return Path(tracking_uri[len(prefix):]) if tracking_uri.startswith(prefix) else None


def _json_list(value: str | None) -> list[str] | None:
    """A list param as flattened by muse.runs.tracking (JSON); None when unset or not a list."""
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    return [str(item) for item in parsed] if isinstance(parsed, list) else None


def learned_targets(task: str, params: dict[str, str]) -> tuple[str, ...]:
    """What the run learned: `model.targets` if the model chose, else `task.targets`."""
    chosen = _json_list(params.get("model.targets")) or _json_list(params.get("task.targets"))
    return tuple(chosen or TASKS[task].targets)


def system_name(model: str, task: str, targets: tuple[str, ...]) -> str:
    """The paper's name for the model; the learned targets follow when not the scored ones."""
    name = MODEL_NAMES.get(model, model)
    if set(targets) != set(TASKS[task].scored):
        name += f" [{'+'.join(targets)}]"
    return name


def fusion_name(task: str, tags: dict[str, str]) -> str:
    """A fused run's system: the seed ensemble of its members' system, or the fusion of each
    member's system on its feature sets."""
    try:
        members = json.loads(tags.get(MEMBERS_TAG, "[]"))
    except json.JSONDecodeError:
        members = []
    systems = [f"{system_name(m['model'], task, tuple(m['targets']))} ({m['features_label']})"
               for m in members if isinstance(m, dict) and {"model", "targets",
                                                             "features_label"} <= set(m)]
    if not systems:
        return "Fusion"
    if tags.get(ENSEMBLE_TAG) == "true":
        first = members[0]
        return (f"{system_name(first['model'], task, tuple(first['targets']))} "
                f"({len(members)}-seed ensemble)")
    return f"Fusion ({tags.get(METHOD_TAG, 'mean')}): {' | '.join(systems)}"


def _record(run: Run, experiment: str) -> dict | None:
    tags, params = run.data.tags, run.data.params
    if MLFLOW_PARENT_RUN_ID in tags:  # one target's model of a per-target run: see its parent
        return None
    task, model, features = tags.get("task"), tags.get("model"), tags.get("features")
    if task not in TASKS or not model or not features:
        log.warning("run %s in %s lacks muse's task/model/features tags: ignored",
                    run.info.run_id, experiment)
        return None
    scores = {key[len(BEST_PREFIX):]: value for key, value in run.data.metrics.items()
              if key.startswith(BEST_PREFIX)}
    if not scores:
        log.warning("run %s in %s has no best/ scores: ignored", run.info.run_id, experiment)
        return None
    targets = learned_targets(task, params)
    return {
        "run_id": run.info.run_id,
        "experiment": experiment,
        "start_time": run.info.start_time,
        "task": task,
        "model": model,
        "targets": targets,
        "system": (fusion_name(task, tags) if model == FUSION_MODEL
                   else system_name(model, task, targets)),
        "features": features,
        "features_label": params.get("features.label", features),
        "feature_names": frozenset(_json_list(params.get("features.names")) or ()),
        "seed": tags.get("seed", ""),
        **scores,
    }


def _finished_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], "attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def load_runs(tracking_uri: str, experiments: list[str] | None = None) -> pd.DataFrame:
    """The finished muse runs of the experiments (default: the three sub-challenges')."""
    path = sqlite_path(tracking_uri)
    if path is not None and not path.is_file():
        raise MuseError(f"--tracking-uri {tracking_uri}: no MLflow store at {path} "
                        "(train a model first, or point --tracking-uri at the store)")
    client = MlflowClient(tracking_uri)
    names = list(experiments or EXPERIMENTS)
    records = []
    for name in names:
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            if experiments:
                raise MuseError(f"--experiment {name}: no such experiment in {tracking_uri}")
            continue
        found = [_record(run, name) for run in _finished_runs(client, experiment.experiment_id)]
        records.extend(record for record in found if record is not None)
    if not records:
        raise MuseError(f"no finished muse runs in {', '.join(names)} at {tracking_uri}: "
                        "train some first (python train.py ...)")
    frame = pd.DataFrame.from_records(records).sort_values("start_time", ascending=False)
    newest = frame.drop_duplicates(IDENTITY, keep="first")
    if len(newest) < len(frame):
        log.info("%d older run(s) of the same system, features and seed ignored",
                 len(frame) - len(newest))
    log.info("%d finished run(s) from %s", len(newest), ", ".join(names))
    return newest.reset_index(drop=True)
