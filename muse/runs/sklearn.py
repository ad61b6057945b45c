"""A scikit-learn run: the classical baselines through `train.py` and `evaluate.py`, recorded
like the neural ones (the same lifecycle, `muse.runs.lifecycle`).

`train_classical(cfg)` is what `muse.runs.train.train` hands a `model.kind: sklearn` config to:
it reads the store's segment means, runs the SVM's C sweep per target, saves the fitted models
as `<log_dir>/checkpoints/<run id>/svm.skops` (the run's best checkpoint, so `evaluate.py
run_id=...` finds it) and leaves the same MLflow run as a neural training: the resolved config
as params, the run tags, the official devel/test scores as `best/...` metrics, the prediction
CSVs, scores.json and the confusion matrices, plus the sweep (`sweep/<target>/devel_uar` and
`sweep/<target>/C` at step = index of C) and the chosen C (`svm/<target>/C`, param and metric).
`evaluate_saved` is evaluate.py's path for such a file. The fitted model itself lives in
`muse.classical` (its module path is in every saved file).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from muse.classical.segments import Segments, load_segments
from muse.classical.svm import FittedSVM, SVMSettings, fit_target
from muse.data.datasets import predictions_frame
from muse.errors import MuseError, StoreError
from muse.runs import tracking
from muse.runs.artifacts import log_run_artifacts, summary
from muse.runs.builders import run_targets
from muse.runs.evaluation import Evaluation
from muse.runs.lifecycle import recorded_run
from muse.runs.result import FastDevRun, RunResult
from muse.store.prepare import store_path
from muse.store.reader import Store
from muse.store.sources import store_for
from muse.tasks import EVALUATED_PARTITIONS, TASKS

log = logging.getLogger(__name__)

MODEL_FILE = "svm.skops"


def settings(cfg: DictConfig) -> SVMSettings:
    """The SVM options of `cfg.model`; class weights as for every model (the model's
    `balanced_class_weights`, else the task's)."""
    model = cfg.model
    balanced = model.get("balanced_class_weights", cfg.task.balanced_class_weights)
    return SVMSettings(Cs=tuple(float(c) for c in model.Cs), scale=bool(model.scale),
                       balanced=bool(balanced), max_iter=int(model.max_iter), seed=int(cfg.seed))


def fit(cfg: DictConfig, store: Path, table: str, features: list[str],
        segments: Segments) -> FittedSVM:
    """The SVM of every target of `segments`, read from `store`'s `table` and `features`."""
    chosen, targets = settings(cfg), list(segments.labels)
    return FittedSVM(
        task=cfg.task.name, store_path=str(store), table=table, features=features,
        feature_dim=segments.features.shape[1], targets=targets, scored=list(cfg.task.scored),
        settings=chosen, fits={target: fit_target(segments, target, chosen) for target in targets},
    )


def evaluation(fitted: FittedSVM, segments: Segments) -> Evaluation:
    """Devel and test predictions in the submission layout, scored where labels are present."""
    result = Evaluation(fitted.task)
    for partition in EVALUATED_PARTITIONS:
        rows = segments.indices(partition)
        keys = {"video_id": segments.video_ids[rows], "segment_id": segments.segment_ids[rows]}
        labels = {t: segments.labels[t][rows] for t in fitted.targets}
        predicted = predictions_frame(
            [keys], [fitted.predict(segments.features[rows], partition)], True, fitted.targets)
        columns = [f"prediction_{t}" for t in fitted.scored if f"prediction_{t}" in predicted]
        gold = predictions_frame([keys], [labels], True, fitted.targets)
        result.add(partition, predicted[["id", "segment_id", *columns]],
                   gold.rename(columns=lambda c: c.replace("prediction_", "label_", 1)),
                   fitted.scored)
    return result


def _log_sweep(client: MlflowClient, run_id: str, fitted: FittedSVM) -> None:
    now = int(time.time() * 1000)
    metrics, params = [], []
    for target, chosen in fitted.fits.items():
        for step, (C, value) in enumerate(zip(chosen.Cs, chosen.devel_uar, strict=True)):
            metrics.append(Metric(f"sweep/{target}/devel_uar", value, now, step))
            metrics.append(Metric(f"sweep/{target}/C", C, now, step))
        metrics.append(Metric(f"svm/{target}/C", chosen.C, now, 0))
        params.append(Param(f"svm/{target}/C", repr(chosen.C)))
    client.log_batch(run_id, metrics=metrics, params=params)


def open_store(path: Path, cfg: DictConfig) -> Store:
    """The run's store, which must be its task's."""
    store = Store(path, cfg.data.memory_budget_mb)
    if store.task != cfg.task.name:
        raise StoreError(f"{store.path}: a {store.task} store, not {cfg.task.name}")
    return store


def train_classical(cfg: DictConfig) -> RunResult | FastDevRun:
    """`train(cfg)` for `model.kind: sklearn`: sweep, refit, save, evaluate and record."""
    run_targets(cfg)  # a model for other sub-challenges fails here, before any data work
    if cfg.get("ckpt_path") is not None:
        raise MuseError(f"ckpt_path={cfg.ckpt_path}: model={cfg.model.name} trains in one go, "
                        "there is nothing to resume; run it again without ckpt_path")
    store = store_for(cfg.task.name, cfg.data.dir, cfg.data.package)
    table = cfg.data.alignment or TASKS[cfg.task.name].aligned[0]
    features = [str(name) for name in cfg.features.names]
    segments = load_segments(open_store(store, cfg), features, table, run_targets(cfg))
    log.info("%s: %d segments, %d mean features, targets %s", store, len(segments.video_ids),
             segments.features.shape[1], ", ".join(segments.labels))
    if cfg.trainer.get("fast_dev_run"):
        scores = evaluation(fit(cfg, store, table, features, segments), segments)
        return FastDevRun(scores.flat_scores("best"))

    with recorded_run(cfg, store) as run:
        path = run.checkpoints / MODEL_FILE
        fitted = fit(cfg, store, table, features, segments)
        _log_sweep(run.client, run.run_id, fitted)
        fitted.save(path)
        evaluated = evaluation(fitted, segments)
        evaluated.write(run.out / "predictions")
        log_run_artifacts(run.client, run.run_id, evaluated, run.out)
        tracking.record_best_checkpoints(run.client, run.run_id, [str(path.resolve())],
                                         upload=bool(cfg.logger.get("log_checkpoints", False)))
    result = RunResult(run.run_id, cfg.logger.tracking_uri, cfg.task.experiment_name,
                       str(path.resolve()), str(run.out / "predictions"),
                       evaluated.scores.get("devel"), evaluated.scores.get("test"),
                       run.synthetic_demo,
                       chosen={"C": {target: fit.C for target, fit in fitted.fits.items()}})
    print(summary(result))
    return result


def evaluate_saved(path: Path, data_dir: str | None = None) -> tuple[Evaluation, list[str]]:
    """evaluate.py for a saved SVM: the segment means rebuilt from its store (or the task's
    store in `data_dir`), devel and test predicted exactly as the run did; with the scored
    targets, like `muse.runs.evaluate.evaluate_checkpoint`."""
    fitted = FittedSVM.load(path)
    store = store_path(Path(data_dir), fitted.task) if data_dir else fitted.store_path
    segments = load_segments(Store(store), fitted.features, fitted.table, fitted.targets)
    return evaluation(fitted, segments), fitted.scored
