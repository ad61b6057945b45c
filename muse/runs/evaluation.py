"""Predicting a partition, writing it in the submission layout and scoring it officially.

Beside a MuSe-Topic partition's submission CSV a run writes its class probabilities,
`<partition>_probabilities.csv` (`id, segment_id, probability_<target>_<class>...`, the softmax
of the scored targets' logits), which late fusion (`muse.runs.fusion`) averages or learns from.

Training ends here with its best checkpoint and `evaluate.py` (`muse.runs.evaluate`) calls the
same functions, so the devel score a run logs and the one evaluate.py reproduces come from one
code path: the predictions frame in the submission layout, scored by `muse.scoring.score_frames`
against the gold frame rebuilt from the store (the aggregated table's keys and labels).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from muse.data.datamodule import MuseDataModule
from muse.scoring import score_frames
from muse.tasks import EVALUATED_PARTITIONS, TASKS

log = logging.getLogger(__name__)

UNLABELLED = "unlabelled_rows"  # rows left unscored for a masked label (only when there are)
PROBABILITIES = "_probabilities"  # `<partition>_probabilities.csv` beside `<partition>.csv`


@dataclass
class Evaluation:
    """Per partition: predictions (submission layout), gold labels and official scores."""

    task: str
    predictions: dict[str, pd.DataFrame] = field(default_factory=dict)
    gold: dict[str, pd.DataFrame] = field(default_factory=dict)
    scores: dict[str, dict | None] = field(default_factory=dict)
    probabilities: dict[str, pd.DataFrame] = field(default_factory=dict)

    def write(self, out_dir: Path) -> dict[str, Path]:
        """`<partition>.csv` per partition (`test.csv` is the file to submit), and
        `<partition>_probabilities.csv` where the run has class probabilities."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {}
        for partition, frame in self.predictions.items():
            paths[partition] = out_dir / f"{partition}.csv"
            frame.to_csv(paths[partition], index=False)
        for partition, frame in self.probabilities.items():
            frame.to_csv(out_dir / f"{partition}{PROBABILITIES}.csv", index=False)
        return paths

    def flat_scores(self, prefix: str) -> dict[str, float]:
        """{"<prefix>/<partition>/<target>/<metric>": value, "<prefix>/<partition>/score",
        "<prefix>/<partition>/unlabelled_rows"}."""
        flat = {}
        for partition, scores in self.scores.items():
            if scores is None:
                continue
            for key, value in scores.items():
                if isinstance(value, dict):
                    flat.update({f"{prefix}/{partition}/{key}/{m}": v for m, v in value.items()})
                elif key.endswith("score") or key == UNLABELLED:
                    flat[f"{prefix}/{partition}/{key}"] = value
        return flat

    def add(self, partition: str, predictions: pd.DataFrame, gold: pd.DataFrame,
            scored: list[str], probabilities: pd.DataFrame | None = None) -> None:
        """A partition's predictions and gold labels, with their official scores (`_score`),
        and its class probabilities if the model gives them."""
        self.predictions[partition] = predictions
        self.gold[partition] = gold
        self.scores[partition] = _score(self.task, scored, partition, predictions, gold)
        if probabilities is not None:
            self.probabilities[partition] = probabilities


def probability_column(target: str, label: int) -> str:
    return f"probability_{target}_{label}"


def class_probabilities(outputs: list[dict], scored: list[str],
                        per_segment: bool) -> pd.DataFrame | None:
    """`id, segment_id, probability_<target>_<class>...` of the scored class targets' logits
    in prediction outputs, sorted like the predictions (None: a continuous task)."""
    first = outputs[0]["predictions"]
    targets = [t for t in scored if t in first]
    if not per_segment or not targets:
        return None
    columns = {"id": np.concatenate([o["video_id"].numpy() for o in outputs]),
               "segment_id": np.concatenate([o["segment_id"].numpy() for o in outputs])}
    for target in targets:
        logits = torch.cat([o["predictions"][target] for o in outputs]).double()
        for label, values in enumerate(torch.softmax(logits, dim=1).numpy().T):
            columns[probability_column(target, label)] = values
    return pd.DataFrame(columns).sort_values(["id", "segment_id"]).reset_index(drop=True)


def predict(module: pl.LightningModule, datamodule: MuseDataModule, partition: str,
            scored: list[str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Predictions (scored targets only), gold labels and class probabilities (None for
    continuous tasks) of every labelled row of a partition.

    One pass over the partition gives all three: the outputs carry the batches' labels.
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
    return (frame, gold.rename(columns=lambda c: c.replace("prediction_", "label_", 1)),
            class_probabilities(outputs, scored, datamodule.spec.per_segment))


def _unlabelled(task: str, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """Per row: True where a scored label is masked, NaN (continuous) or -1 (topic classes)."""
    values = frame[columns].to_numpy(dtype=np.float64)
    missing = np.isnan(values)
    if not TASKS[task].continuous:
        missing |= values < 0
    return missing.any(axis=1)


def _score(task: str, scored: list[str], partition: str, predictions: pd.DataFrame,
           labels: pd.DataFrame) -> dict | None:
    """The official scores of the labelled rows, with `unlabelled_rows` when rows were left out
    for a masked label; None for a partition without labels, or for a model without every scored
    target (one target of a per-target run: `combine` scores the run once all are in)."""
    missing = [t for t in scored if f"prediction_{t}" not in predictions]
    if missing:
        # debug: every target model of a per-target run meets this; `combine` scores the run
        log.debug("%s: no %s predictions, which the official score needs: not scored",
                  partition, ", ".join(missing))
        return None
    columns = [f"label_{t}" for t in scored]
    unlabelled = _unlabelled(task, labels, columns)
    if unlabelled.all():
        log.info("%s labels are masked: %s predictions written, not scored", partition,
                 partition)
        return None
    keys = [c for c in labels.columns if not c.startswith("label_")]
    labelled = labels.loc[~unlabelled, keys + columns]
    if unlabelled.any():
        log.warning("%s: %d of %d rows have a masked %s label (NaN or -1); scored the %d "
                    "labelled rows", partition, unlabelled.sum(), len(labels),
                    " or ".join(scored), len(labelled))
        # The scorer needs every key on both sides: the unlabelled rows leave both.
        predictions = predictions.merge(labelled[keys], on=keys, how="inner")
    scores = score_frames(task, labelled, predictions, labels_name=f"{partition} labels")
    if unlabelled.any():  # otherwise the scores are exactly what `muse score` prints
        scores[UNLABELLED] = int(unlabelled.sum())
    return scores


def evaluate_module(module: pl.LightningModule, datamodule: MuseDataModule, task: str,
                    scored: list[str],
                    partitions: tuple[str, ...] = EVALUATED_PARTITIONS) -> Evaluation:
    """Predict and officially score each partition; a partition without labels is unscored, and
    one without videos (a package of new media puts every video in test) is left out."""
    module.eval()
    result = Evaluation(task)
    for partition in partitions:
        if not len(datamodule.store.videos(partition)):
            log.info("%s: no videos in %s, nothing to predict", partition, datamodule.store.path)
            continue
        predictions, labels, probabilities = predict(module, datamodule, partition, scored)
        result.add(partition, predictions, labels, scored, probabilities)
    return result


def _merge(frames: list[pd.DataFrame], prefix: str) -> pd.DataFrame:
    """Frames of the same rows with different value columns, side by side on the key columns."""
    keys = [c for c in frames[0].columns if not c.startswith(prefix)]
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame[keys + [c for c in frame.columns if c not in merged]],
                              on=keys, how="outer", validate="one_to_one")
    return merged


def combine(evaluations: list[Evaluation], task: str, scored: list[str]) -> Evaluation:
    """One evaluation of the models of a per-target run (each predicting its own targets)."""
    result = Evaluation(task)
    for partition in evaluations[0].predictions:
        predictions = _merge([e.predictions[partition] for e in evaluations], "prediction_")
        keys = [c for c in predictions.columns if not c.startswith("prediction_")]
        predictions = predictions[keys + [f"prediction_{t}" for t in scored
                                          if f"prediction_{t}" in predictions]]
        labels = _merge([e.gold[partition] for e in evaluations], "label_")
        found = [e.probabilities[partition] for e in evaluations if partition in e.probabilities]
        result.add(partition, predictions, labels, scored,
                   _merge(found, "probability_") if found else None)
    return result
