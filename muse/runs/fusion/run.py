"""The fused run: members' predictions fused per target, scored and recorded like a training.

`fuse_runs` reads the members (`members`), checks them (`checks`), reads the gold labels from
their store (`gold`), fuses every scored target (`methods`) and records a new run in the
members' experiment through the one run lifecycle (`muse.runs.lifecycle.recorded_run`): tag
`model=fusion`, the members as the param `fusion.members`, as the tag `muse.fusion.members` and
as links in the run's description, the fused devel/test predictions in the submission layout
(with class probabilities for MuSe-Topic), the official scores as `best/...` metrics and the
plots of a training run (`muse.runs.artifacts.log_run_artifacts`). No training data is read.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from muse.errors import FusionError
from muse.runs import tracking
from muse.runs.artifacts import log_run_artifacts, summary
from muse.runs.evaluation import Evaluation, probability_column
from muse.runs.fusion.checks import check_members, keys
from muse.runs.fusion.gold import gold_frame
from muse.runs.fusion.members import Member, read_members
from muse.runs.fusion.methods import Fused, TargetInputs, fuse_target, one_hot
from muse.runs.fusion.tags import ENSEMBLE_TAG, FUSION_MODEL, MEMBERS_TAG, METHOD_TAG
from muse.runs.lifecycle import recorded_run
from muse.runs.result import RunResult
from muse.store.prepare import store_path
from muse.store.reader import fingerprint
from muse.tasks import EVALUATED_PARTITIONS, TASKS

log = logging.getLogger(__name__)

NOTE_TAG = "mlflow.note.content"  # the run description the MLflow UI renders as markdown
LABELS, PROBABILITIES = "labels", "probabilities"  # what MuSe-Topic targets are fused from


@dataclass
class FusedRun:
    """A fusion before it is recorded: its evaluation and, per target, what the method chose."""

    evaluation: Evaluation
    chosen: dict[str, dict] = field(default_factory=dict)
    classes_from: str | None = None


def members_store(members: list[Member], task: str, data_dir: Path | None) -> Path:
    """The store the members trained on (`data_dir` holds it when given), checked against
    their fingerprint."""
    path = store_path(Path(data_dir), task) if data_dir else Path(members[0].store)
    if not path.is_file():
        raise FusionError(f"{path}: the members' {task} store is not on this machine; give "
                          "--data DIR, the folder that holds it")
    found = f"fingerprint {fingerprint(path)}"
    if members[0].data.startswith("fingerprint ") and found != members[0].data:
        raise FusionError(f"{path}: prepared from other data ({found}) than the members "
                          f"trained on ({members[0].data})")
    return path


def _aligned(member: Member, partition: str, gold: pd.DataFrame, task: str) -> tuple:
    """The member's predictions (and probabilities) of a partition, in the gold rows' order."""
    order = list(TASKS[task].key)
    frames = [member.predictions[partition]]
    if member.probabilities:
        frames.append(member.probabilities[partition])
    aligned = []
    for frame in frames:
        frame = frame.sort_values(order).reset_index(drop=True)
        if not keys(frame, task).equals(keys(gold, task)):
            raise FusionError(f"run {member.run_id} ({member.name}) predicts other {partition} "
                              f"rows than its store holds: fuse runs of the store they name")
        aligned.append(frame)
    return aligned[0], aligned[1] if len(aligned) > 1 else None


def _class_count(target: str, frames: list[tuple], gold: dict[str, pd.DataFrame]) -> int:
    seen = [int(gold[p][f"label_{target}"].max()) for p in EVALUATED_PARTITIONS]
    for predictions, probabilities in frames:
        seen.append(int(predictions[f"prediction_{target}"].max()))
        if probabilities is not None:
            seen.append(sum(c.startswith(f"probability_{target}_") for c in probabilities) - 1)
    return max(seen) + 1


def _matrix(target: str, predictions: pd.DataFrame, probabilities: pd.DataFrame | None,
            classes: int | None) -> np.ndarray:
    """One member's input for a target (`muse.runs.fusion.methods`)."""
    if classes is None:
        return predictions[f"prediction_{target}"].to_numpy(np.float64)[:, None]
    if probabilities is not None:
        columns = [probability_column(target, label) for label in range(classes)]
        return probabilities.reindex(columns=columns, fill_value=0.0).to_numpy(np.float64)
    return one_hot(predictions[f"prediction_{target}"].to_numpy(), classes)


def fuse_members(members: list[Member], method: str, store: Path, task: str) -> FusedRun:
    """Every scored target some member predicts, fused over the members that predict it."""
    spec = TASKS[task]
    gold = {p: gold_frame(store, task, p) for p in EVALUATED_PARTITIONS}
    aligned = {m.run_id: {p: _aligned(m, p, gold[p], task) for p in EVALUATED_PARTITIONS}
               for m in members}
    by_probabilities = all(m.probabilities for m in members)
    fused = FusedRun(Evaluation(task), classes_from=None if spec.continuous else (
        PROBABILITIES if by_probabilities else LABELS))
    if fused.classes_from == LABELS:
        lacking = [f"{m.run_id} ({m.name})" for m in members if not m.probabilities]
        log.warning("run(s) %s saved no class probabilities: MuSe-Topic targets are fused from "
                    "the members' labels (a vote) instead", ", ".join(lacking))
    outputs: dict[str, dict[str, np.ndarray]] = {p: {} for p in EVALUATED_PARTITIONS}
    for target in spec.scored:
        column = f"prediction_{target}"
        having = [m for m in members if column in m.predictions["devel"]
                  and column in m.predictions["test"]]
        if not having:
            continue
        frames = {p: [aligned[m.run_id][p] for m in having] for p in EVALUATED_PARTITIONS}
        classes = None if spec.continuous else _class_count(
            target, frames["devel"] + frames["test"], gold)
        matrices = {p: [_matrix(target, *frame, classes) for frame in frames[p]]
                    for p in EVALUATED_PARTITIONS}
        inputs = TargetInputs(
            target, classes is not None, matrices["devel"], matrices["test"],
            gold["devel"][f"label_{target}"].to_numpy(), gold["devel"]["id"].to_numpy(),
            [m.devel_score(target) for m in having])
        result: Fused = fuse_target(method, inputs)
        fused.chosen[target] = {"members": [m.run_id for m in having], **result.chosen}
        outputs["devel"][target], outputs["test"][target] = result.devel, result.test
    if not outputs["devel"]:
        raise FusionError("none of the runs predicts a target the task scores "
                          f"({', '.join(spec.scored)})")
    probabilities = not spec.continuous and (by_probabilities or method == "learned")
    for partition in EVALUATED_PARTITIONS:
        frame = gold[partition][list(spec.key)].copy()
        chances = frame.copy()
        for target, values in outputs[partition].items():
            if spec.continuous:
                frame[f"prediction_{target}"] = values[:, 0]
                continue
            frame[f"prediction_{target}"] = values.argmax(axis=1).astype(np.int64)
            for label in range(values.shape[1]):
                chances[probability_column(target, label)] = values[:, label]
        fused.evaluation.add(partition, frame, gold[partition], list(spec.scored),
                             chances if probabilities else None)
    return fused


def _joined(values: list[str], separator: str) -> str:
    return separator.join(dict.fromkeys(value for value in values if value))


def fusion_config(members: list[Member], fused: FusedRun, method: str, ensemble: bool,
                  experiment: str, tracking_uri: str, log_dir: Path, out: Path) -> DictConfig:
    """The fused run's configuration, logged as its params like a training's."""
    targets = list(fused.chosen)
    return OmegaConf.create({
        "seed": _joined([m.seed for m in members], "+"),
        "task": {"name": members[0].task, "experiment_name": experiment, "targets": targets,
                 "scored": list(TASKS[members[0].task].scored)},
        "model": {"name": FUSION_MODEL},
        "features": {"name": _joined([m.features for m in members], "+"),
                     "label": _joined([m.features_label for m in members], " + "),
                     "names": list(dict.fromkeys(n for m in members for n in m.feature_names))},
        "fusion": {"method": method, "ensemble": ensemble,
                   "members": [m.run_id for m in members], "classes_from": fused.classes_from,
                   "targets": fused.chosen},
        # conf/logger/mlflow.yaml's logger, with no system metrics: nothing is trained
        "logger": {"_target_": "pytorch_lightning.loggers.MLFlowLogger", "_convert_": "all",
                   "tracking_uri": tracking_uri, "artifact_location": str(log_dir / "artifacts"),
                   "system_metrics": False},
        "paths": {"log_dir": str(log_dir), "output_dir": str(out)},
    })


def run_name(members: list[Member], method: str, ensemble: bool) -> str:
    features = _joined([m.features for m in members], "+")
    if ensemble:
        return f"{members[0].model}-{features}-ensemble{len(members)}"
    return f"{FUSION_MODEL}-{method}-{features}"


def description(members: list[Member], fused: FusedRun, method: str, ensemble: bool,
                experiment: str) -> str:
    """The run's description (markdown in the MLflow UI): what was fused, with links."""
    kind = f"{len(members)}-seed ensemble" if ensemble else "Late fusion"
    lines = [f"{kind} of {len(members)} {experiment} runs, method `{method}`.", ""]
    for member in members:
        lines.append(f"* [{member.name}](#/experiments/{member.experiment_id}/runs/"
                     f"{member.run_id}): {member.model}, {member.features_label}, seed "
                     f"{member.seed}")
    lines.append("")
    for target, chosen in fused.chosen.items():
        details = ", ".join(f"{k} {v}" for k, v in chosen.items() if k != "members")
        lines.append(f"* {target}: {len(chosen['members'])} member(s)"
                     + (f"; {details}" if details else ""))
    if fused.classes_from == LABELS:
        lines.append("* classes fused from the members' labels (a vote): some member saved no "
                     "class probabilities")
    return "\n".join(lines)


def fuse_runs(tracking_uri: str, run_ids: list[str], method: str = "mean",
              log_dir: Path = Path("logs"), name: str | None = None,
              data_dir: Path | None = None, ensemble: bool = False) -> RunResult:
    """Fuse finished runs into a new recorded run; its result, as `train` gives one."""
    client: MlflowClient = tracking.open_store(tracking_uri)
    members = read_members(client, tracking_uri, run_ids)
    task = check_members(members)
    store = members_store(members, task, data_dir)
    fused = fuse_members(members, method, store, task)
    experiment = client.get_experiment(members[0].experiment_id).name
    runs = Path(log_dir) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f"{datetime.now():%Y-%m-%d_%H-%M-%S}-fuse-", dir=runs))
    cfg = fusion_config(members, fused, method, ensemble, experiment, tracking_uri,
                        Path(log_dir).resolve(), out)
    with recorded_run(cfg, store) as run:
        run.client.update_run(run.run_id, name=name or run_name(members, method, ensemble))
        run.client.set_tag(run.run_id, MEMBERS_TAG, json.dumps([m.describe() for m in members]))
        run.client.set_tag(run.run_id, ENSEMBLE_TAG, str(ensemble).lower())
        run.client.set_tag(run.run_id, METHOD_TAG, method)
        run.client.set_tag(run.run_id, NOTE_TAG,
                           description(members, fused, method, ensemble, experiment))
        fused.evaluation.write(run.out / "predictions")
        log_run_artifacts(run.client, run.run_id, fused.evaluation, run.out)
    result = RunResult(run.run_id, tracking_uri, experiment, "", str(run.out / "predictions"),
                       fused.evaluation.scores.get("devel"), fused.evaluation.scores.get("test"),
                       run.synthetic_demo)
    print(summary(result))
    return result
