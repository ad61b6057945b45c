"""`train(cfg)`: one training run from a composed Hydra config, recorded in MLflow.

data (store, datamodule) -> model (encoder + heads) -> Lightning fit with the task's monitor
-> the best checkpoint's devel and test predictions in the submission layout, scored by the
official scorer -> MLflow (params once, tags, metrics, predictions, plots). A crash marks the
run FAILED with its traceback; Ctrl-C marks it KILLED and leaves `last.ckpt` to resume from
with `ckpt_path=last` (or the run id), which continues the same MLflow run.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint, OnExceptionCheckpoint
from pytorch_lightning.trainer.states import TrainerStatus

from muse import tracking
from muse.data.datamodule import MuseDataModule
from muse.data.layout import TASKS
from muse.data.sources import store_for
from muse.errors import MuseError
from muse.evaluation import Evaluation, evaluate_module
from muse.module import MuseModule
from muse.reporting import log_run_artifacts, summary

log = logging.getLogger(__name__)


def build_datamodule(cfg: DictConfig, store: Path) -> MuseDataModule:
    data = cfg.data
    return MuseDataModule(
        str(store), cfg.task.name, list(cfg.features.names), targets=run_targets(cfg),
        window=data.window, hop=data.hop, eval_window=data.eval_window,
        segment_length=data.segment_length, alignment=data.alignment,
        batch_size=data.batch_size, eval_batch_size=data.eval_batch_size,
        num_workers=data.num_workers, normalize=data.normalize, audio=data.audio,
        memory_budget_mb=data.memory_budget_mb, seed=cfg.seed,
    )


def class_weights(datamodule: MuseDataModule, target: str, classes: int) -> list[float]:
    """Balanced weights n / (classes * count) from the train segments (absent classes: 1)."""
    store = datamodule.store
    labels = store.read(f"segments/labels/{target}")
    offsets = store.read("segments/video_offsets")
    train = np.isin(np.repeat(store.video_ids, np.diff(offsets)), store.videos("train"))
    counts = np.bincount(labels[train & (labels >= 0)], minlength=classes).astype(float)
    weights = np.where(counts > 0, counts.sum() / (classes * np.maximum(counts, 1)), 1.0)
    return weights.tolist()


def run_targets(cfg: DictConfig) -> list[str]:
    """The targets this run learns: the model's own choice (`model.targets`) or the task's."""
    chosen = cfg.model.get("targets") or cfg.task.targets
    available = TASKS[cfg.task.name].targets
    unknown = [name for name in chosen if name not in available]
    if unknown:
        raise MuseError(f"model {cfg.model.name} learns {', '.join(unknown)}, which "
                        f"task={cfg.task.name} has no labels for (it has: {', '.join(available)})")
    return [str(name) for name in chosen]


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
    for name in run_targets(cfg):
        classes = datamodule.num_classes.get(name)
        if classes is None:
            targets.append({"name": name, "kind": "continuous"})
        else:
            weights = (class_weights(datamodule, name, classes)
                       if cfg.task.balanced_class_weights else None)
            targets.append({"name": name, "kind": "classes", "num_classes": classes,
                            "class_weights": weights})
    container = OmegaConf.to_container(cfg.model, resolve=True)
    return MuseModule(
        encoder=encoder_node(cfg, datamodule), input_dim=datamodule.feature_dim, task=cfg.task.name,
        targets=targets, scored=list(cfg.task.scored), optimizer=container["optimizer"],
        scheduler=container.get("scheduler"),
    )


@dataclass
class Resume:
    run_id: str | None = None
    checkpoint: Path | None = None


def checkpoint_dir(cfg: DictConfig, run_id: str) -> Path:
    return Path(cfg.paths.log_dir) / "checkpoints" / run_id


def resume_point(cfg: DictConfig) -> Resume:
    """What `ckpt_path` names: `last`, a run id or a checkpoint file (None: a new run)."""
    value = cfg.get("ckpt_path")
    if value is None:
        return Resume()
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
    path = checkpoint_dir(cfg, run_id) / "last.ckpt"
    if not path.is_file():
        raise MuseError(f"ckpt_path={value}: no checkpoint {path} to resume run {run_id} from")
    return Resume(run_id, path)


def output_dir(cfg: DictConfig) -> Path:
    path = Path(cfg.paths.output_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def train(cfg: DictConfig) -> dict:
    """Train, evaluate the best epoch and record everything; returns scores and locations."""
    pl.seed_everything(cfg.seed, workers=True)
    store = store_for(cfg.task.name, cfg.data.dir, cfg.data.package)
    datamodule = build_datamodule(cfg, store)
    module = build_module(cfg, datamodule)
    if cfg.trainer.get("fast_dev_run"):
        trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
        trainer.fit(module, datamodule=datamodule)
        trainer.test(module, datamodule=datamodule)
        return {"fast_dev_run": True, "metrics": dict(trainer.callback_metrics)}

    resume = resume_point(cfg)
    logger = tracking.make_logger(cfg, resume.run_id)
    run_id, client, out = logger.run_id, logger.experiment, output_dir(cfg)
    if resume.run_id is None:
        tracking.log_config(logger, cfg, out)
    else:
        log.info("resuming MLflow run %s from %s", run_id, resume.checkpoint)
    ckpt_dir = checkpoint_dir(cfg, run_id)
    client.set_tag(run_id, tracking.CHECKPOINT_DIR_TAG, str(ckpt_dir.resolve()))
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best-{epoch:03d}", save_last=True,
                           monitor=cfg.callbacks.checkpoint.monitor,
                           mode=cfg.callbacks.checkpoint.mode, auto_insert_metric_name=False)
    callbacks = [best, EarlyStopping(**cfg.callbacks.early_stopping),
                 OnExceptionCheckpoint(dirpath=ckpt_dir, filename="last")]
    trainer = instantiate(cfg.trainer, logger=logger, callbacks=callbacks,
                          default_root_dir=str(out))
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume.checkpoint)
        evaluation = _best_evaluation(cfg, best.best_model_path or None, module, datamodule)
        evaluation.write(out / "predictions")
        log_run_artifacts(client, run_id, evaluation, out)
        best_path = str(Path(best.best_model_path).resolve()) if best.best_model_path else ""
        client.set_tag(run_id, tracking.BEST_CHECKPOINT_TAG, best_path)
        tracking.mark(client, run_id, "FINISHED")
    except SystemExit:
        # Lightning turns Ctrl-C into a graceful stop followed by sys.exit(1).
        if trainer.state.status == TrainerStatus.INTERRUPTED:
            tracking.mark(client, run_id, "KILLED")
            print(f"\nInterrupted. Resume with: python train.py <same overrides> "
                  f"ckpt_path={run_id}")
        raise
    except KeyboardInterrupt:
        tracking.mark(client, run_id, "KILLED")
        raise
    except BaseException:
        tracking.mark(client, run_id, "FAILED", traceback.format_exc())
        raise
    result = {"run_id": run_id, "tracking_uri": cfg.logger.tracking_uri,
              "experiment": cfg.task.experiment_name, "best_checkpoint": best_path,
              "devel": evaluation.scores.get("devel"), "test": evaluation.scores.get("test"),
              "predictions": str(out / "predictions")}
    print(summary(result))
    return result


def _best_evaluation(cfg: DictConfig, best_path: str | None, module: MuseModule,
                     datamodule: MuseDataModule) -> Evaluation:
    if best_path:
        module = MuseModule.load_from_checkpoint(best_path, map_location="cpu")
    return evaluate_module(module, datamodule, cfg.task.name, list(cfg.task.scored))
