"""What a finished run leaves in MLflow and on the terminal: scores, predictions, pictures."""

from __future__ import annotations

import json
from pathlib import Path

from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient

from muse.runs import plots, tracking
from muse.runs.evaluation import UNLABELLED, Evaluation
from muse.runs.result import RunResult
from muse.tasks import EVALUATED_PARTITIONS, TASKS

CURVE_PREFIXES = ("train/", "devel/")


def log_run_artifacts(client: MlflowClient, run_id: str, evaluation: Evaluation,
                      out: Path) -> None:
    """Best-epoch scores as metrics, the prediction CSVs and the plots of one run."""
    for key, value in evaluation.flat_scores("best").items():
        client.log_metric(run_id, key, float(value))
    client.log_artifacts(run_id, str(out / "predictions"), "predictions")
    scores = {p: s for p, s in evaluation.scores.items() if s is not None}
    client.log_text(run_id, json.dumps(scores, indent=2), "scores.json")
    for name, figure in figures(client, run_id, evaluation):
        client.log_figure(run_id, figure, f"plots/{name}.png")


def figures(client: MlflowClient, run_id: str, evaluation: Evaluation) -> list[tuple[str, Figure]]:
    found = []
    devel_gold, devel = evaluation.gold.get("devel"), evaluation.predictions.get("devel")
    if devel is not None:
        if TASKS[evaluation.task].per_segment:
            found.append(("devel_confusion", plots.confusion_matrices(devel_gold, devel)))
        else:
            found.append(("devel_curves",
                          plots.prediction_curves(devel_gold, devel, evaluation.task)))
    history = metric_history(client, run_id)
    if history:
        found.append(("learning_curves", plots.learning_curves(history)))
    return found


def metric_history(client: MlflowClient, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """Per-epoch metric values of a run, keyed by metric name, as (epoch, value) pairs."""
    run = client.get_run(run_id)
    epoch_at = {m.step: int(m.value) for m in client.get_metric_history(run_id, "epoch")}
    history = {}
    for key in run.data.metrics:
        if key.startswith(CURVE_PREFIXES):
            points = client.get_metric_history(run_id, key)
            history[key] = [(epoch_at.get(m.step, m.step), m.value)
                            for m in sorted(points, key=lambda m: m.step)]
    return history


def summary(result: RunResult) -> str:
    """The lines a run ends with: scores, where it is recorded, how to look at it."""
    lines = ["", f"MuSe run {result.run_id} ({result.experiment})"]
    if result.synthetic_demo:
        lines.append("  data: the synthetic demo MuSe-CaR, not the challenge package (train on "
                     "the real data with data.package=/path/to/muse2020)")
    for partition in EVALUATED_PARTITIONS:
        scores = result.scores(partition)
        if scores is None:
            lines.append(f"  {partition}: not scored (labels masked, or a scored target not "
                         "learned), predictions written only")
            continue
        overall = [f"{k} {v}" for k, v in scores.items() if k.endswith("score")]
        targets = [f"{k} {v.get('ccc', v.get('score'))}" for k, v in scores.items()
                   if isinstance(v, dict)]
        unlabelled = scores.get(UNLABELLED)
        left_out = [f"{unlabelled} unlabelled rows not scored"] if unlabelled else []
        lines.append(f"  {partition}: " + ", ".join(overall + targets + left_out))
    lines.append(f"  predictions (submission layout): {result.predictions}")
    if result.best_checkpoint:  # a fused run has none
        lines.append(f"  best checkpoint: {result.best_checkpoint}")
    lines.append(f"  recorded in {result.tracking_uri}")
    lines.append(f"  look at it: {tracking.ui_command(result.tracking_uri, result.experiment)}")
    return "\n".join(lines)
