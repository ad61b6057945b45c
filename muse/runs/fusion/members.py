"""A member of a fusion: a FINISHED run's identity, devel scores and saved predictions.

Everything comes from MLflow (a local store or a tracking server): the run's tags (task,
model, features, seed, the store it trained on and that store's prepare fingerprint), its
params (the targets it learned, the feature sets' label), its `best/devel/...` scores, and the
artifacts `predictions/<partition>.csv` in the submission layout with, for MuSe-Topic runs,
`predictions/<partition>_probabilities.csv` (absent from runs that give no probabilities, the
SVM, and from runs recorded before muse saved them).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import mlflow.artifacts
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from muse.errors import FusionError
from muse.runs import tracking
from muse.runs.evaluation import PROBABILITIES
from muse.tasks import EVALUATED_PARTITIONS, TASKS


@dataclass(frozen=True)
class Member:
    """One run to fuse. `data` identifies its store: the prepare fingerprint, or the store's
    path for a run recorded before runs tagged the fingerprint."""

    run_id: str
    name: str
    experiment_id: str
    task: str
    model: str
    features: str
    features_label: str
    feature_names: tuple[str, ...]
    targets: tuple[str, ...]
    seed: str
    store: str
    data: str
    devel_scores: dict = field(default_factory=dict)
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)
    probabilities: dict[str, pd.DataFrame] = field(default_factory=dict)

    def describe(self) -> dict:
        """What the fused run records of its member (tag `muse.fusion.members`)."""
        return {"run_id": self.run_id, "name": self.name, "model": self.model,
                "features": self.features, "features_label": self.features_label,
                "targets": list(self.targets), "seed": self.seed}

    def devel_score(self, target: str) -> float | None:
        """The member's devel score of one target: its CCC, or a class target's score."""
        scores = self.devel_scores.get(target) or {}
        return scores.get(TASKS[self.task].metric)


def _list_param(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return ()
    return tuple(str(item) for item in parsed) if isinstance(parsed, list) else ()


def _get_run(client: MlflowClient, run_id: str, tracking_uri: str) -> Run:
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise FusionError(f"run {run_id}: no such run in {tracking_uri}") from None
    if run.info.status != "FINISHED":
        raise FusionError(f"run {run_id} ({run.info.run_name}) is {run.info.status}, not "
                          "FINISHED: only finished runs have predictions to fuse")
    return run


def _download(run: Run, tracking_uri: str, into: Path) -> Path:
    try:
        with tracking.quiet_downloads():
            return Path(mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="predictions", dst_path=str(into),
                tracking_uri=tracking_uri))
    except (MlflowException, OSError) as error:
        raise FusionError(f"run {run.info.run_id} ({run.info.run_name}): no predictions "
                          f"artifacts to fuse ({type(error).__name__})") from None


def read_member(client: MlflowClient, tracking_uri: str, run_id: str) -> Member:
    """One FINISHED run with its devel and test predictions; FusionError otherwise."""
    run = _get_run(client, run_id, tracking_uri)
    tags, params = run.data.tags, run.data.params
    task = tags.get("task")
    if task not in TASKS:
        raise FusionError(f"run {run_id} ({run.info.run_name}) has no muse task tag: not a "
                          "muse run")
    predictions, probabilities = {}, {}
    with tempfile.TemporaryDirectory(prefix="muse-fuse-") as folder:
        found = _download(run, tracking_uri, Path(folder))
        for partition in EVALUATED_PARTITIONS:
            path = found / f"{partition}.csv"
            if not path.is_file():
                raise FusionError(f"run {run_id} ({run.info.run_name}) saved no {partition} "
                                  f"predictions (predictions/{partition}.csv)")
            predictions[partition] = pd.read_csv(path)
            path = found / f"{partition}{PROBABILITIES}.csv"
            if path.is_file():
                probabilities[partition] = pd.read_csv(path)
    store = tags.get(tracking.DATA_TAG, "")
    targets = (_list_param(params.get("model.targets")) or _list_param(params.get("task.targets"))
               or TASKS[task].targets)
    return Member(
        run_id=run_id, name=run.info.run_name or run_id, experiment_id=run.info.experiment_id,
        task=task, model=tags.get("model", ""), features=tags.get("features", ""),
        features_label=params.get("features.label", tags.get("features", "")),
        feature_names=_list_param(params.get("features.names")), targets=targets,
        seed=tags.get("seed", ""), store=store,
        data=(f"fingerprint {tags[tracking.FINGERPRINT_TAG]}"
              if tags.get(tracking.FINGERPRINT_TAG) else f"path {store}"),
        devel_scores=tracking.best_scores(run).get("devel", {}),
        predictions=predictions,
        probabilities=probabilities if len(probabilities) == len(predictions) else {},
    )


def read_members(client: MlflowClient, tracking_uri: str, run_ids: list[str]) -> list[Member]:
    repeated = sorted({run_id for run_id in run_ids if run_ids.count(run_id) > 1})
    if repeated:
        raise FusionError(f"run(s) {', '.join(repeated)} given more than once")
    return [read_member(client, tracking_uri, run_id) for run_id in run_ids]
