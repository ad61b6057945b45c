"""`train(cfg)`: one training run from a composed Hydra config, recorded in MLflow.

data (store, datamodule) -> model (encoder + heads) -> Lightning fit with the task's monitor
-> the best checkpoint's devel and test predictions in the submission layout, scored by the
official scorer -> MLflow (params once, tags, metrics, predictions, plots). A crash marks the
run FAILED with its traceback; Ctrl-C marks it KILLED and leaves `last.ckpt` to resume from
with `ckpt_path=last` (or the run id), which continues the same MLflow run. With
`skip_finished` (every sweep), a configuration with a FINISHED run is not trained again (its
stored result is returned) and an interrupted one continues from its last checkpoint.
A configuration error found before training (feature sets, targets or audio the store lacks)
ends the call before a run is made, and the process training a run holds its lock
(`muse.locks`), so resuming never attaches a second process to a run that is still training.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, OnExceptionCheckpoint
from pytorch_lightning.loggers import MLFlowLogger
from pytorch_lightning.trainer.states import TrainerStatus

from muse import distributed, locks, tracking
from muse.data.datamodule import MuseDataModule
from muse.data.demo import is_demo_store
from muse.data.layout import TASKS
from muse.data.sources import store_for
from muse.errors import MuseError
from muse.evaluation import Evaluation, combine, evaluate_module
from muse.module import MuseModule
from muse.reporting import log_run_artifacts, summary

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig, store: Path,
                     targets: list[str] | None = None) -> MuseDataModule:
    """The run's data; `targets`: the labels one model learns (default: every run target)."""
    data = cfg.data
    return MuseDataModule(
        str(store), cfg.task.name, list(cfg.features.names),
        targets=targets or run_targets(cfg),
        window=data.window, hop=data.hop, eval_window=data.eval_window,
        segment_length=data.segment_length, alignment=data.alignment,
        batch_size=data.batch_size, eval_batch_size=data.eval_batch_size,
        num_workers=data.num_workers, normalize=data.normalize, audio=data.audio,
        memory_budget_mb=data.memory_budget_mb, seed=cfg.seed,
        unaligned_lengths=data.get("unaligned_lengths"),
    )


def class_weights(datamodule: MuseDataModule, target: str, classes: int) -> list[float]:
    """Balanced weights n / (classes * count) from the train segments (absent classes: 1)."""
    store = datamodule.store
    labels = store.read(f"segments/labels/{target}")
    train = np.isin(store.segment_videos(), store.videos("train"))
    counts = np.bincount(labels[train & (labels >= 0)], minlength=classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 1.0)
    return weights.tolist()


def run_targets(cfg: DictConfig) -> list[str]:
    """The targets this run learns: the model's own choice (`model.targets`) or the task's."""
    tasks = cfg.model.get("tasks")  # a model made for some sub-challenges only
    if tasks and cfg.task.name not in tasks:
        raise MuseError(f"model={cfg.model.name} is made for task={' or '.join(tasks)} only, "
                        f"not task={cfg.task.name}")
    chosen = cfg.model.get("targets") or cfg.task.targets
    available = TASKS[cfg.task.name].targets
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise MuseError(f"model {cfg.model.name} learns {', '.join(unknown)}, which "
                        f"task={cfg.task.name} has no labels for (it has: {', '.join(available)})")
    return [str(name) for name in chosen]


def target_groups(cfg: DictConfig) -> list[list[str]]:
    """The targets of each model the run trains: all in one, or one model per target."""
    targets = run_targets(cfg)
    return [[name] for name in targets] if cfg.model.get("per_target") else [targets]


def encoder_node(cfg: DictConfig, datamodule: MuseDataModule) -> dict:
    """The model's encoder node, with the data facts it leaves open (`null`) filled in.

    `feature_dims` ({feature set: width}) and `audio_samples` (samples per label step) are
    known only once the store is open; filled in here, they are saved with the checkpoint.
    """
    node = OmegaConf.to_container(cfg.model.encoder, resolve=True)
    facts = {"feature_dims": lambda: datamodule.feature_dims,
             "audio_samples": lambda: datamodule.audio_samples_per_step}
    for key, fact in facts.items():
        if key in node and node[key] is None:
            node[key] = fact()
    return node


def build_module(cfg: DictConfig, datamodule: MuseDataModule) -> MuseModule:
    targets = []
    # A model may set its own (ALBERT trains with balanced weights); otherwise the task decides.
    balanced = cfg.model.get("balanced_class_weights", cfg.task.balanced_class_weights)
    for name in datamodule.targets:
        classes = datamodule.num_classes.get(name)
        if classes is None:
            targets.append({"name": name, "kind": "continuous"})
        else:
            weights = class_weights(datamodule, name, classes) if balanced else None
            targets.append({"name": name, "kind": "classes", "num_classes": classes,
                            "class_weights": weights})
    container = OmegaConf.to_container(cfg.model, resolve=True)
    return MuseModule(
        encoder=encoder_node(cfg, datamodule), input_dim=datamodule.feature_dim, task=cfg.task.name,
        targets=targets, scored=list(cfg.task.scored), optimizer=container["optimizer"],
        scheduler=container.get("scheduler"),
        output_activation=container.get("output_activation"),
    )


@dataclass
class Resume:
    run_id: str | None = None
    checkpoint: Path | None = None


def checkpoint_dir(cfg: DictConfig, run_id: str) -> Path:
    return Path(cfg.paths.log_dir) / "checkpoints" / run_id


def run_lock(cfg: DictConfig, run_id: str) -> Path:
    """The lock the process training a run holds (`logs/locks/<run id>.lock`): not in the
    checkpoint folder, which Lightning wants empty."""
    return Path(cfg.paths.log_dir) / "locks" / f"{run_id}.lock"


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


def finished_result(cfg: DictConfig) -> dict | None:
    """With `skip_finished`: the stored result of a FINISHED run of this exact configuration
    (None: there is none, so the run trains)."""
    if not cfg.get("skip_finished") or cfg.trainer.get("fast_dev_run"):
        return None
    run = tracking.finished_run(cfg.logger.tracking_uri, cfg.task.experiment_name,
                                tracking.config_hash(cfg))
    if run is None:
        return None
    log.info("skipping %s: finished as run %s", tracking.run_name(cfg), run.info.run_id)
    scores = tracking.best_scores(run)
    return {"run_id": run.info.run_id, "tracking_uri": cfg.logger.tracking_uri,
            "experiment": cfg.task.experiment_name,
            "best_checkpoint": run.data.tags.get(tracking.BEST_CHECKPOINT_TAG, ""),
            "devel": scores.get("devel"), "test": scores.get("test"),
            "predictions": f"{run.info.artifact_uri}/predictions", "skipped": True}


def output_dir(cfg: DictConfig) -> Path:
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(cfg: DictConfig) -> dict:
    """Train, evaluate the best epoch and record everything; returns scores and locations."""
    finished = finished_result(cfg)
    if finished is not None:
        return finished
    if cfg.model.get("kind") == "sklearn":
        # Imported here: the classical harness itself builds on this module's helpers.
        from muse.classical.harness import train_classical

        return train_classical(cfg)
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
        return {"fast_dev_run": True, "metrics": metrics}

    resume = resume_point(cfg)
    if not distributed.is_global_zero():
        return _train_other_rank(cfg, store, groups, resume)
    check_data(cfg, store, groups)  # a configuration error ends here, before a run is recorded
    with ExitStack() as held:
        if resume.run_id is not None:  # before attaching to it: is it still training?
            held.enter_context(locks.training(run_lock(cfg, resume.run_id), resume.run_id))
        logger = tracking.make_logger(cfg, resume.run_id)
        if resume.run_id is None:
            held.enter_context(locks.training(run_lock(cfg, logger.run_id), logger.run_id))
        return _train_run(cfg, store, groups, resume, logger)


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
               logger: MLFlowLogger) -> dict:
    """The run's fits, evaluation and records; the run ends FINISHED, FAILED or KILLED."""
    run_id, client, out = logger.run_id, logger.experiment, output_dir(cfg)
    if resume.run_id is None:
        tracking.log_config(logger, cfg, out)
    else:
        log.info("resuming MLflow run %s from %s", run_id, resume.checkpoint)
    ckpt_dir = checkpoint_dir(cfg, run_id)
    client.set_tag(run_id, tracking.CHECKPOINT_DIR_TAG, str(ckpt_dir.resolve()))
    demo = is_demo_store(store)
    tracking.tag_data(client, run_id, store, demo)
    fits: list[Fit] = []

    def stopped_runs() -> set[str]:
        """The run and, per target, the child run whose fit was under way."""
        return {run_id, *(fit.run_id for fit in fits[-1:])}

    try:
        if len(groups) == 1:
            fits.append(Fit(cfg, store, groups[0], logger, ckpt_dir, resume.checkpoint))
            fits[-1].run(out)
        else:
            for group in groups:
                fits.append(_target_fit(cfg, store, group, run_id, ckpt_dir))
                fits[-1].run(out)
        evaluations = [fit.evaluation for fit in fits]
        evaluation = (evaluations[0] if len(evaluations) == 1
                      else combine(evaluations, cfg.task.name, list(cfg.task.scored)))
        evaluation.write(out / "predictions")
        log_run_artifacts(client, run_id, evaluation, out)
        best_path = tracking.join_checkpoints([fit.best_path for fit in fits])
        client.set_tag(run_id, tracking.BEST_CHECKPOINT_TAG, best_path)
        tracking.mark(client, run_id, "FINISHED")
    except SystemExit:
        # Lightning turns Ctrl-C into a graceful stop followed by sys.exit(1).
        if fits and fits[-1].interrupted:
            for run in stopped_runs():
                tracking.mark(client, run, "KILLED")
            print(f"\nInterrupted. Resume with: python train.py <same overrides> "
                  f"ckpt_path={run_id}")
        raise
    except KeyboardInterrupt:
        for run in stopped_runs():
            tracking.mark(client, run, "KILLED")
        raise
    except BaseException:
        for run in stopped_runs():
            tracking.mark(client, run, "FAILED", traceback.format_exc())
        raise
    result = {"run_id": run_id, "tracking_uri": cfg.logger.tracking_uri,
              "experiment": cfg.task.experiment_name, "best_checkpoint": best_path,
              "devel": evaluation.scores.get("devel"), "test": evaluation.scores.get("test"),
              "predictions": str(out / "predictions"), "synthetic_demo": demo}
    print(summary(result))
    return result


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
        datamodule = build_datamodule(cfg, self.store, self.targets)
        module = build_module(cfg, datamodule)
        best = ModelCheckpoint(dirpath=self.ckpt_dir, filename="best-{epoch:03d}", save_last=True,
                               monitor=cfg.callbacks.checkpoint.monitor,
                               mode=cfg.callbacks.checkpoint.mode, auto_insert_metric_name=False)
        callbacks = [best, EarlyStopping(**cfg.callbacks.early_stopping),
                     OnExceptionCheckpoint(dirpath=self.ckpt_dir, filename="last")]
        self.trainer = instantiate(cfg.trainer, logger=self.logger or False, callbacks=callbacks,
                                   default_root_dir=str(out))
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
                      resume: Resume) -> dict:
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
    return {}
