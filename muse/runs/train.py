"""`train(cfg)`: one training run from a composed Hydra config, dispatched on the model's kind.

`model.kind: sklearn` runs the classical baselines (`muse.runs.sklearn`), any other model is a
Lightning run (`muse.runs.lightning`); both are recorded by the same lifecycle. With
`skip_finished` (every sweep), a configuration with a FINISHED run is not trained again: its
stored result is returned.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig

from muse.runs import tracking
from muse.runs.lightning import train_lightning
from muse.runs.result import FastDevRun, RunResult
from muse.runs.sklearn import train_classical

log = logging.getLogger(__name__)

SKLEARN = "sklearn"  # `model.kind` of the scikit-learn baselines


def finished_result(cfg: DictConfig) -> RunResult | None:
    """With `skip_finished`: the stored result of a FINISHED run of this exact configuration
    (None: there is none, so the run trains)."""
    if not cfg.get("skip_finished") or cfg.trainer.get("fast_dev_run"):
        return None
    run = tracking.finished_run(cfg.logger.tracking_uri, cfg.task.experiment_name,
                                tracking.config_hash(cfg))
    if run is None:
        earlier = tracking.earlier_layout_runs(cfg.logger.tracking_uri, cfg.task.experiment_name,
                                               tracking.run_name(cfg))
        if earlier:
            log.warning("training %s again: run %s finished under an earlier config layout, "
                        "whose hashes cannot be compared with today's (delete it from %s if "
                        "it is the same configuration)", tracking.run_name(cfg),
                        ", ".join(run.info.run_id for run in earlier), cfg.task.experiment_name)
        return None
    log.info("skipping %s: finished as run %s", tracking.run_name(cfg), run.info.run_id)
    scores = tracking.best_scores(run)
    return RunResult(run.info.run_id, cfg.logger.tracking_uri, cfg.task.experiment_name,
                     run.data.tags.get(tracking.BEST_CHECKPOINT_TAG, ""),
                     f"{run.info.artifact_uri}/predictions", scores.get("devel"),
                     scores.get("test"), skipped=True)


def train(cfg: DictConfig) -> RunResult | FastDevRun | None:
    """Train, evaluate the best epoch and record everything; returns scores and locations
    (None on the processes of a multi-process run other than rank 0, which record nothing)."""
    finished = finished_result(cfg)
    if finished is not None:
        return finished
    if cfg.model.get("kind") == SKLEARN:
        return train_classical(cfg)
    return train_lightning(cfg)
