"""A Lightning run: one model (or one per target) fitted, evaluated and recorded in MLflow.

data (store, datamodule) -> model (encoder + heads) -> Lightning fit with the task's monitor
-> the best checkpoint's devel and test predictions in the submission layout, scored by the
official scorer -> MLflow (params once, tags, metrics, predictions, plots), the run opened and
ended by `muse.runs.lifecycle`. Ctrl-C leaves `last.ckpt` to resume from with `ckpt_path=last`
(or the run id), which continues the same MLflow run; with `skip_finished` an interrupted
configuration continues from its last checkpoint. A configuration error found before training
(feature sets, targets or audio the store lacks) ends the call before a run is made.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.trainer.states import TrainerStatus

from muse import distributed
from muse.data.datamodule import MuseDataModule
from muse.errors import MuseError
from muse.module import MuseModule
from muse.runs import tracking
from muse.runs.artifacts import log_run_artifacts, summary
from muse.runs.builders import (
    build_callbacks,
    build_datamodule,
    build_module,
    checkpoint_dir,
    output_dir,
    target_groups,
)
from muse.runs.evaluation import Evaluation, combine, evaluate_module
from muse.runs.lifecycle import OpenRun, recorded_run
from muse.runs.result import FastDevRun, RunResult
from muse.store.sources import store_for

log = logging.getLogger(__name__)

BEST = "checkpoint"  # the callback (conf/callbacks/checkpoint.yaml) keeping the best epoch


@dataclass
class Resume:
    run_id: str | None = None
    checkpoint: Path | None = None


def resume_point(cfg: DictConfig) -> Resume:
    """What `ckpt_path` names: `last`, a run id or a checkpoint file (None: a new run)."""
    value = cfg.get("ckpt_path")
    if value is None:
        return interrupted_run(cfg) if cfg.get("skip_finished") else Resume()
    value = str(value)
    if Path(value).is_file():
        path = Path(value)
        return Resume(tracking.checkpoint_run_id(path), path)
    if value == "last":
        run_id = tracking.unfinished_run(cfg.logger.tracking_uri, cfg.task.experiment_name,
                                         tracking.config_hash(cfg))
        if run_id is None:
            raise MuseError(f"ckpt_path=last: no unfinished {cfg.task.experiment_name} run with "
                            "this exact configuration to resume")
    else:
        run_id = value
    if len(target_groups(cfg)) > 1:  # each target's child run continues from its own last.ckpt
        return Resume(run_id, None)
    path = checkpoint_dir(cfg, run_id) / "last.ckpt"
    if not path.is_file():
        raise MuseError(f"ckpt_path={value}: no checkpoint {path} to resume run {run_id} from")
    return Resume(run_id, path)


def interrupted_run(cfg: DictConfig) -> Resume:
    """With `skip_finished`: continue the newest unfinished run of this exact configuration
    from its last checkpoint; a new run when there is none (or it left no checkpoint)."""
    run_id = tracking.unfinished_run(cfg.logger.tracking_uri, cfg.task.experiment_name,
                                     tracking.config_hash(cfg))
    if run_id is not None and len(target_groups(cfg)) > 1:  # the targets resume themselves
        return Resume(run_id, None)
    path = checkpoint_dir(cfg, run_id) / "last.ckpt" if run_id else None
    return Resume(run_id, path) if path is not None and path.is_file() else Resume()


def train_lightning(cfg: DictConfig) -> RunResult | FastDevRun | None:
    """`train(cfg)` for a Lightning model: fit, evaluate the best epoch, record everything."""
    pl.seed_everything(cfg.seed, workers=True)
    store = store_for(cfg.task.name, cfg.data.dir, cfg.data.package)
    groups = target_groups(cfg)
    if cfg.trainer.get("fast_dev_run"):
        metrics = {}
        for group in groups:
            datamodule = build_datamodule(cfg, store, group)
            module = build_module(cfg, datamodule)
            trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
            trainer.fit(module, datamodule=datamodule)
            trainer.test(module, datamodule=datamodule)
            metrics |= dict(trainer.callback_metrics)
        return FastDevRun(metrics)

    resume = resume_point(cfg)
    if not distributed.is_global_zero():
        return _train_other_rank(cfg, store, groups, resume)
    check_data(cfg, store, groups)  # a configuration error ends here, before a run is recorded
    with recorded_run(cfg, store, resume.run_id, resume.checkpoint) as run:
        evaluation, best_path = _train_run(cfg, store, groups, resume, run)
    result = RunResult(run.run_id, cfg.logger.tracking_uri, cfg.task.experiment_name,
                       best_path, str(run.out / "predictions"), evaluation.scores.get("devel"),
                       evaluation.scores.get("test"), run.synthetic_demo)
    print(summary(result))
    return result


def check_data(cfg: DictConfig, store: Path, groups: list[list[str]]) -> None:
    """What each model of the run reads exists in the store: feature sets, targets, audio.

    Reads only the store's index, so a bad `features=`, `data.*` or target choice fails in
    seconds, with a MuseError, before an MLflow run is made for it.
    """
    for group in groups:
        try:
            datamodule = build_datamodule(cfg, store, group)
        except ValueError as error:  # the datamodule's argument checks
            raise MuseError(f"data settings: {error}") from error
        # Each raises a StoreError naming the store and what it lacks.
        found = {"targets": datamodule.targets, "features": datamodule.feature_dims}
        if datamodule.audio and datamodule.store.audio_rate <= 0:
            raise MuseError(f"{store}: model={cfg.model.name} reads the raw audio, which the "
                            "store was prepared without; run `muse prepare` again without "
                            "--no-audio")
        datamodule.store.close()
        log.debug("%s holds what the model of %s reads: %s", store, ", ".join(group), found)


def _train_run(cfg: DictConfig, store: Path, groups: list[list[str]], resume: Resume,
               run: OpenRun) -> tuple[Evaluation, str]:
    """The run's fits and evaluation, recorded in `run`: its evaluation and best checkpoint(s)."""
    fits: list[Fit] = []
    # Ended with the run: the child run whose fit was under way, and whether it was Ctrl-C.
    run.children = lambda: {fit.run_id for fit in fits[-1:]}
    run.interrupted = lambda: bool(fits) and fits[-1].interrupted
    if len(groups) == 1:
        fits.append(Fit(cfg, store, groups[0], run.logger, run.checkpoints, resume.checkpoint))
        fits[-1].run(run.out)
    else:
        for group in groups:
            fits.append(_target_fit(cfg, store, group, run.run_id, run.checkpoints))
            fits[-1].run(run.out)
    evaluations = [fit.evaluation for fit in fits]
    evaluation = (evaluations[0] if len(evaluations) == 1
                  else combine(evaluations, cfg.task.name, list(cfg.task.scored)))
    evaluation.write(run.out / "predictions")
    log_run_artifacts(run.client, run.run_id, evaluation, run.out)
    best_path = tracking.record_best_checkpoints(
        run.client, run.run_id, [fit.best_path for fit in fits],
        upload=bool(cfg.logger.get("log_checkpoints", False)))
    return evaluation, best_path


class Fit:
    """One model of a run: its data, Lightning fit into `ckpt_dir` and best-epoch evaluation.

    A run trains one Fit, or one per target (`model.per_target`), each then logging its
    epochs to a child run of the run (the run's own metrics are the combined final scores).
    On the other processes of a multi-process run it has no logger: it trains, in step with
    rank 0, and records nothing.
    """

    def __init__(self, cfg: DictConfig, store: Path, targets: list[str],
                 logger: MLFlowLogger | None,
                 ckpt_dir: Path, checkpoint: Path | None = None, child: bool = False) -> None:
        self.cfg, self.store, self.targets = cfg, store, targets
        self.logger, self.ckpt_dir, self.checkpoint = logger, ckpt_dir, checkpoint
        self.child = child  # a target's own run: it records its best checkpoint and ends
        self.run_id = logger.run_id if logger else None
        self.trainer: pl.Trainer | None = None
        self.best_path = ""
        self.evaluation: Evaluation | None = None

    @property
    def interrupted(self) -> bool:
        return self.trainer is not None and self.trainer.state.status == TrainerStatus.INTERRUPTED

    def run(self, out: Path) -> None:
        cfg = self.cfg
        # Each model starts from the run's seed, so a target's model of a per-target run is the
        # one a run of that target alone trains: it does not depend on how many draws the
        # models before it took, or on whether they were trained now or by an earlier attempt.
        pl.seed_everything(cfg.seed, workers=True)
        datamodule = build_datamodule(cfg, self.store, self.targets)
        module = build_module(cfg, datamodule)
        callbacks = build_callbacks(cfg, self.ckpt_dir)
        best = callbacks[BEST]
        self.trainer = instantiate(cfg.trainer, logger=self.logger or False,
                                   callbacks=list(callbacks.values()), default_root_dir=str(out))
        self.trainer.fit(module, datamodule=datamodule, ckpt_path=self.checkpoint)
        self.best_path = str(Path(best.best_model_path).resolve()) if best.best_model_path else ""
        if self.logger is None:  # another rank: rank 0 evaluates and records
            return
        self.evaluate(module, datamodule)
        if self.child:
            client = self.logger.experiment
            client.set_tag(self.run_id, tracking.BEST_CHECKPOINT_TAG, self.best_path)
            tracking.mark(client, self.run_id, "FINISHED")

    def evaluate(self, module: MuseModule | None = None,
                 datamodule: MuseDataModule | None = None) -> None:
        """The best epoch's predictions (the given module when no checkpoint was kept)."""
        if self.best_path:
            module = MuseModule.load_from_checkpoint(self.best_path, map_location="cpu")
        if datamodule is None:
            datamodule = build_datamodule(self.cfg, self.store, self.targets)
            if self.best_path:  # the checkpoint's normalisation statistics, not refitted ones
                datamodule.load_checkpoint_state(self.best_path)
        self.evaluation = evaluate_module(module, datamodule, self.cfg.task.name,
                                          list(self.cfg.task.scored))


class FinishedFit(Fit):
    """A target model an earlier attempt of this run finished: evaluated, not trained again."""

    def run(self, out: Path) -> None:
        log.info("target %s: finished as run %s, not trained again", self.targets[0],
                 self.run_id)
        self.evaluate()


def _target_fit(cfg: DictConfig, store: Path, group: list[str], parent_id: str,
                ckpt_dir: Path, lead: bool = True) -> Fit:
    """The Fit of one target of a per-target run: its child run, new or resumed.

    `lead=False` (the other processes of a multi-process run): the same choice, no logger.
    """
    target = group[0]
    child = tracking.child_run(cfg, parent_id, target)
    logger = (tracking.make_logger(cfg, child.run_id, parent_id=parent_id, target=target)
              if lead else None)
    target_dir = ckpt_dir / target
    if child.finished and child.best_checkpoint:
        fit = FinishedFit(cfg, store, group, logger, target_dir, child=True)
        fit.best_path = child.best_checkpoint
        return fit
    last = target_dir / "last.ckpt"
    resumed = last if child.run_id is not None and last.is_file() else None
    return Fit(cfg, store, group, logger, target_dir, resumed, child=True)


def _train_other_rank(cfg: DictConfig, store: Path, groups: list[list[str]],
                      resume: Resume) -> None:
    """A process of a multi-process (DDP) run other than rank 0: the same fits as rank 0, in step.

    Lightning hands every process rank 0's checkpoint folder when a fit starts; the MLflow
    run, the checkpoints and the evaluation are rank 0's alone, so this records nothing.
    """
    out = output_dir(cfg)
    for group in groups:
        if len(groups) > 1 and resume.run_id is not None:
            # Resuming a per-target run: each target is skipped or resumed as rank 0 does it.
            fit = _target_fit(cfg, store, group, resume.run_id,
                              checkpoint_dir(cfg, resume.run_id), lead=False)
            if isinstance(fit, FinishedFit):
                continue
        else:
            fit = Fit(cfg, store, group, None, out,
                      resume.checkpoint if len(groups) == 1 else None)
        fit.run(out)
