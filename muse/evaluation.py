"""Predicting a partition, writing it in the submission layout and scoring it officially.

Training ends here with its best checkpoint and `evaluate.py` calls the same functions, so the
devel score a run logs and the one evaluate.py reproduces come from one code path: the
predictions frame in the submission layout, scored by `muse.scoring.score_frames` against the
gold frame rebuilt from the store (the aggregated table's keys and labels).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig

from muse import tracking
from muse.data.datamodule import MuseDataModule
from muse.data.prepare import store_path
from muse.errors import MuseError
from muse.scoring import score_frames

log = logging.getLogger(__name__)

PARTITIONS = ("devel", "test")


@dataclass
class Evaluation:
    """Per partition: predictions (submission layout), gold labels and official scores."""

    task: str
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)
    gold: dict[str, pd.DataFrame] = field(default_factory=dict)
    scores: dict[str, dict | None] = field(default_factory=dict)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """`<partition>.csv` per partition; `test.csv` is the file to submit."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for partition, frame in self.predictions.items():
            paths[partition] = out_dir / f"{partition}.csv"
            frame.to_csv(paths[partition], index=False)
        return paths

    def flat_scores(self, prefix: str) -> dict[str, float]:
        """{"<prefix>/<partition>/<target>/<metric>": value, "<prefix>/<partition>/score"}."""
        flat = {}
        for partition, scores in self.scores.items():
            if scores is None:
                continue
            for key, value in scores.items():
                if isinstance(value, dict):
                    flat.update({f"{prefix}/{partition}/{key}/{m}": v for m, v in value.items()})
                elif key.endswith("score"):
                    flat[f"{prefix}/{partition}/{key}"] = value
        return flat


def predict(module: pl.LightningModule, datamodule: MuseDataModule, partition: str,
            scored: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions (scored targets only) and gold labels of every labelled row of a partition.

    One pass over the partition gives both: the outputs carry the batches' labels.
    """
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         accelerator="auto", devices=1)
    with torch.inference_mode():
        outputs = trainer.predict(module, dataloaders=datamodule.predict_dataloader(partition))
    predictions = [output["predictions"] for output in outputs]
    frame = datamodule.predictions_frame(outputs, predictions, list(predictions[0]))
    keys = [c for c in frame.columns if not c.startswith("prediction_")]
    frame = frame[keys + [f"prediction_{t}" for t in scored if f"prediction_{t}" in frame]]
    gold = datamodule.predictions_frame(outputs, [output["labels"] for output in outputs])
    return frame, gold.rename(columns=lambda c: c.replace("prediction_", "label_", 1))


def _has_labels(frame: pd.DataFrame, columns: list[str]) -> bool:
    """False for masked labels: NaN (continuous) or -1 (topic classes)."""
    values = frame[columns].to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if "segment_id" in frame.columns:
        missing |= values < 0
    return bool(len(values)) and not missing.any()


def evaluate_module(module: pl.LightningModule, datamodule: MuseDataModule, task: str,
                    scored: list[str], partitions: tuple[str, ...] = PARTITIONS) -> Evaluation:
    """Predict and officially score each partition; a partition with masked labels is unscored."""
    module.eval()
    result = Evaluation(task)
    for partition in partitions:
        predictions, labels = predict(module, datamodule, partition, scored)
        columns = [f"label_{t}" for t in scored]
        result.predictions[partition] = predictions
        result.gold[partition] = labels
        if _has_labels(labels, columns):
            keys = [c for c in labels.columns if not c.startswith("label_")]
            result.scores[partition] = score_frames(task, labels[keys + columns], predictions,
                                                    labels_name=f"{partition} labels")
        else:
            log.info("%s labels are masked: %s predictions written, not scored", partition,
                     partition)
            result.scores[partition] = None
    return result


def locate_checkpoint(cfg: DictConfig) -> tuple[Path, str | None]:
    """The checkpoint to evaluate and the MLflow run it belongs to (None if unknown)."""
    client = MlflowClient(cfg.logger.tracking_uri)
    if cfg.get("ckpt"):
        path = Path(cfg.ckpt)
        if not path.is_file():
            raise MuseError(f"ckpt={path}: no such checkpoint file")
        return path, tracking.checkpoint_run_id(path)
    if not cfg.get("run_id"):
        raise MuseError("give run_id=<mlflow run id> or ckpt=<checkpoint file>")
    try:
        tags = client.get_run(cfg.run_id).data.tags
    except MlflowException:
        raise MuseError(f"run_id={cfg.run_id}: no such run in {cfg.logger.tracking_uri}") from None
    best = tags.get(tracking.BEST_CHECKPOINT_TAG)
    if not best or not Path(best).is_file():
        raise MuseError(f"run {cfg.run_id} has no best checkpoint on this machine ({best!r}); "
                        "pass ckpt=<file> instead")
    return Path(best), cfg.run_id


def evaluate(cfg: DictConfig) -> dict:
    """evaluate.py: rebuild model and data from a checkpoint, predict, score, write test.csv."""
    from muse.module import MuseModule

    checkpoint, run_id = locate_checkpoint(cfg)
    module = MuseModule.load_from_checkpoint(checkpoint, map_location="cpu")
    task, scored = module.hparams.task, list(module.hparams.scored)
    overrides = {}
    if cfg.get("data_dir"):
        overrides["store_path"] = store_path(Path(cfg.data_dir), task)
    datamodule = MuseDataModule.load_from_checkpoint(checkpoint, **overrides)
    result = evaluate_module(module, datamodule, task, scored)
    out = Path(cfg.paths.output_dir)
    paths = result.write(out)
    if run_id is not None:
        client = MlflowClient(cfg.logger.tracking_uri)
        for key, value in result.flat_scores("evaluate").items():
            client.log_metric(run_id, key, float(value))
        client.log_artifact(run_id, str(paths["test"]), "submission")
    print(f"evaluated {checkpoint}")
    for partition, scores in result.scores.items():
        print(f"  {partition}: {json.dumps(scores) if scores else 'labels masked, not scored'}")
    print(f"  submission file: {paths['test']}")
    return {"checkpoint": str(checkpoint), "run_id": run_id, "scores": result.scores,
            "submission": str(paths["test"])}
