"""A run's best checkpoints loaded and applied to a prepared store of new videos.

A Lightning checkpoint gives the module and its datamodule back (`load_from_checkpoint`, as
evaluate.py does), pointed at the new store: the normalisation statistics saved with the
checkpoint are applied, never refitted (the new store has no train partition to fit on), and a
store whose feature layout differs from the training one is an error before anything runs. A
saved SVM (`.skops`) predicts the segment means with its train + devel refit, the models of
the test partition. Every video of an extracted package is a test video with masked labels
(a package of your own labelled videos may have train and devel videos too: each partition is
predicted alike): the evaluation items (whole-video chunks of `eval_window` steps, or segments)
cover every step or segment exactly once, whatever the labels.

Predictions come back as one frame per store in the task's key (`id, timestamp` or
`id, segment_id`): per step `prediction_<target>`; per segment the class `prediction_<target>`
and `probability_<target>_<class>` for every class id, summing to 1. A Lightning module's
probabilities are the softmax of its logits; a linear SVM has no probabilities, so its are the
softmax of its decision values (uncalibrated: their order, not their size, is the model's).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from scipy.special import softmax

from muse.classical.segments import load_segments
from muse.classical.svm import FittedSVM
from muse.data.datamodule import MuseDataModule
from muse.module import MuseModule
from muse.package.layout import EMOTION_CLASSES, STEP_MS, TOPIC_NAMES
from muse.predict.errors import PredictError
from muse.store.reader import Store
from muse.tasks import ALL_PARTITIONS, TASKS

# What loading a corrupt or foreign file as a Lightning checkpoint raises (muse.runs.evaluate).
UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError,
              OSError, AttributeError)


def class_count(target: str) -> int:
    return len(TOPIC_NAMES) if target == "topic" else EMOTION_CLASSES


def probability_columns(target: str) -> list[str]:
    return [f"probability_{target}_{k}" for k in range(class_count(target))]


def _segment_frame(video_ids: np.ndarray, segment_ids: np.ndarray,
                   scores: dict[str, np.ndarray]) -> pd.DataFrame:
    """Classes and probabilities of each segment from per-class scores {target: (S, C)}."""
    probabilities = {target: softmax(values.astype(np.float64), axis=1)
                     for target, values in scores.items()}
    frame = {"id": video_ids.astype(np.int64), "segment_id": segment_ids.astype(np.int64)}
    frame |= {f"prediction_{target}": p.argmax(axis=1) for target, p in probabilities.items()}
    for target, p in probabilities.items():
        frame.update(zip(probability_columns(target), p.T, strict=True))
    return pd.DataFrame(frame).sort_values(["id", "segment_id"]).reset_index(drop=True)


@dataclass
class LightningModel:
    """A Lightning checkpoint: the module, and its datamodule rebuilt on another store."""

    checkpoint: Path
    module: MuseModule

    @classmethod
    def load(cls, checkpoint: Path) -> LightningModel:
        try:
            module = MuseModule.load_from_checkpoint(checkpoint, map_location="cpu")
        except UNREADABLE as error:
            raise PredictError(f"{checkpoint}: not a readable muse checkpoint "
                               f"({type(error).__name__})") from error
        return cls(checkpoint, module)

    @property
    def task(self) -> str:
        return str(self.module.hparams.task)

    @property
    def audio_rate(self) -> int:
        """The raw-audio rate the model reads (End2You: samples per step x 4), else 0."""
        samples = self.module.hparams.encoder.get("audio_samples")
        return int(samples) * 1000 // STEP_MS if samples else 0

    def datamodule(self, store: Path) -> MuseDataModule:
        """The checkpoint's datamodule on `store`, with the checkpoint's statistics."""
        datamodule = MuseDataModule.load_from_checkpoint(self.checkpoint, store_path=str(store),
                                                         num_workers=0)
        if datamodule.normalize and not datamodule.normalizers:
            raise PredictError(f"{self.checkpoint}: the model normalises its features but the "
                               "checkpoint holds no normalisation statistics (an older muse "
                               "saved none): train the run again")
        if datamodule.feature_dim != self.module.hparams.input_dim:
            raise PredictError(
                f"{store}: {'+'.join(datamodule.features) or 'no features'} give "
                f"{datamodule.feature_dim} columns, the model of {self.checkpoint} reads "
                f"{self.module.hparams.input_dim}")
        return datamodule

    def predict(self, store: Path) -> pd.DataFrame:
        datamodule = self.datamodule(store)
        datamodule.setup()
        self.module.eval()
        trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, accelerator="auto", devices=1)
        outputs = []
        with torch.inference_mode():
            for partition in ALL_PARTITIONS:
                if len(datamodule.dataset(partition)):
                    outputs += trainer.predict(
                        self.module, dataloaders=datamodule.predict_dataloader(partition))
        if TASKS[self.task].continuous:
            return datamodule.predictions_frame(outputs, [o["predictions"] for o in outputs],
                                                list(self.module.targets))
        return _segment_frame(
            torch.cat([o["video_id"] for o in outputs]).numpy(),
            torch.cat([o["segment_id"] for o in outputs]).numpy(),
            {target: torch.cat([o["predictions"][target] for o in outputs]).float().numpy()
             for target in self.module.targets})


@dataclass
class SavedSVM:
    """A saved scikit-learn run (muse.classical.svm), applied to a store's segment means."""

    checkpoint: Path
    fitted: FittedSVM

    @classmethod
    def load(cls, checkpoint: Path) -> SavedSVM:
        return cls(checkpoint, FittedSVM.load(checkpoint))

    @property
    def task(self) -> str:
        return self.fitted.task

    @property
    def audio_rate(self) -> int:
        return 0

    def predict(self, store: Path) -> pd.DataFrame:
        segments = load_segments(Store(store), self.fitted.features, self.fitted.table,
                                 self.fitted.targets)
        features = segments.features
        if features.shape[1] != self.fitted.feature_dim:
            raise PredictError(
                f"{store}: {'+'.join(self.fitted.features)} give {features.shape[1]} columns, "
                f"the SVM of {self.checkpoint} was fitted on {self.fitted.feature_dim}")
        scores = {}
        for target, fit in self.fitted.fits.items():
            # the model of the test partition, refit on train + devel, for every video
            decision = np.asarray(fit.test_model.decision_function(features), np.float64)
            if decision.ndim == 1:  # two classes: the score of the second against the first
                decision = np.column_stack([np.zeros_like(decision), decision])
            full = np.full((len(features), class_count(target)), -np.inf)
            full[:, fit.test_model.classes_.astype(np.int64)] = decision
            scores[target] = full
        return _segment_frame(segments.video_ids, segments.segment_ids, scores)


Model = LightningModel | SavedSVM


def load_model(checkpoint: Path) -> Model:
    """The model of one checkpoint file, by its kind (muse.runs.evaluate's rule)."""
    if checkpoint.suffix in (".skops", ".joblib"):
        return SavedSVM.load(checkpoint)
    return LightningModel.load(checkpoint)


def predict_store(models: list[Model], store: Path) -> pd.DataFrame:
    """Every model's predictions on `store`, side by side (one model per target: merged)."""
    frames = [model.predict(store) for model in models]
    keys = list(TASKS[models[0].task].key)
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame[keys + [c for c in frame.columns if c not in merged]],
                              on=keys, how="outer", validate="one_to_one")
    return merged
