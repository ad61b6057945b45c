"""`MuseDataModule`: one LightningDataModule for all three sub-challenges.

Configured by task and feature selection (early fusion: the chosen feature sets concatenated
in the order given). Wild and trust yield windows of label-aligned steps for training and
non-overlapping sequences for devel/test; topic yields one item per segment. The batch layouts
are described in `muse.data.datasets` (topic with `alignment="unaligned"`: every feature set
at its own rows and length, `muse.data.unaligned`).

Features are standardised by default with train-partition statistics (`muse.data.normalization`),
fitted once in `setup`; with `normalize_audio`, the raw audio too, by one mean and std of the
train partition's samples (End2You). They are the module's state: Lightning saves
`state_dict()` in every checkpoint and `MuseDataModule.load_from_checkpoint` hands it back
through `load_state_dict`, so a datamodule rebuilt from a checkpoint (evaluate.py, also on
another store) applies the statistics the model was trained with and never refits them on the
data it predicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from muse.data.datasets import (
    SegmentDataset,
    SequenceDataset,
    collate_segments,
    collate_sequences,
    make_windows,
    predictions_frame,
)
from muse.data.normalization import Normalizer
from muse.data.sharding import evaluation_sampler
from muse.data.unaligned import (
    UNALIGNED,
    collate_unaligned,
    unaligned_segments,
    unaligned_table,
)
from muse.errors import MuseError, StoreError
from muse.package.layout import EMOTION_CLASSES, STEP_MS, TOPIC_NAMES
from muse.store.reader import Audio, Store
from muse.tasks import ALL_PARTITIONS, TASKS

CONTINUOUS_TABLE = "label_aligned"
AUDIO_STATISTICS = "audio"  # the raw audio's entry among the normalisation statistics
TOPIC_ALIGNMENT = "egemaps_aligned"


def _names(value: str | Iterable[str]) -> list[str]:
    """A list of names from a list (or Hydra ListConfig) or a comma-separated string."""
    items = value.split(",") if isinstance(value, str) else value
    return [str(item).strip() for item in items if str(item).strip()]


class MuseDataModule(pl.LightningDataModule):
    """Train/devel/test loaders of one store for one task and feature selection.

    Args:
        store_path: the task's HDF5 store (`muse prepare` output).
        task: wild, topic or trust.
        features: feature sets to concatenate, in this order (a list or "a,b,c"); may be
            empty when the raw audio is read, or for topic, whose batches carry the text.
        targets: label columns, in this order; default every target the store has.
        window, hop: training window length and hop in label steps (wild, trust).
        eval_window: devel/test chunk length; None = whole videos.
        segment_length: topic segments are cropped/padded to this many rows.
        alignment: topic table, `egemaps_aligned` (default) or `fasttext_aligned`; or
            `unaligned`: every feature set's own rows (`muse.data.unaligned`).
        batch_size, eval_batch_size: training and evaluation batch sizes (eval defaults to
            batch_size).
        num_workers: DataLoader workers; each opens the store itself.
        normalize: standardise features with train statistics (per feature set for
            `unaligned`); a checkpoint's saved statistics win (`load_state_dict`).
        audio: add the raw audio of each step (wild, trust; End2You).
        normalize_audio: standardise that audio with the mean and std of the train
            partition's samples, saved and restored like the feature statistics (default
            off: the samples as they are, in [-1, 1], as checkpoints made before it read them).
        memory_budget_mb: features, then audio, are held in memory while they fit; the
            rest is read from the file per item.
        seed: seed of the training shuffle.
        unaligned_lengths: topic, alignment `unaligned`: {feature set: rows kept per segment}
            for the sets that do not keep `segment_length` rows.
    """

    def __init__(
        self,
        store_path: str | Path,
        task: str,
        features: str | Sequence[str],
        targets: str | Sequence[str] | None = None,
        window: int = 50,
        hop: int = 50,
        eval_window: int | None = None,
        segment_length: int = 500,
        alignment: str | None = None,
        batch_size: int = 50,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        normalize: bool = True,
        audio: bool = False,
        normalize_audio: bool = False,
        memory_budget_mb: float = 2048,
        seed: int = 0,
        unaligned_lengths: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        # Checkpoints then carry the data settings: evaluate.py rebuilds this module from them
        # (a plain str: weights-only checkpoint loading refuses Path objects). The harness logs
        # the whole config itself, so the logger does not get these.
        store_path = str(store_path)
        unaligned_lengths = {str(k): int(v) for k, v in (unaligned_lengths or {}).items()}
        self.save_hyperparameters(logger=False)
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        self.task = task
        self.spec = TASKS[task]  # targets, scored targets and key columns of the task
        self.store_path = Path(store_path)
        self.features = _names(features)
        # Topic batches always carry the transcripts, which a text model reads alone.
        if not self.features and not audio and self.spec.continuous:
            raise ValueError("choose at least one feature set (or the raw audio)")
        self._targets = None if targets is None else tuple(_names(targets))
        if self.spec.continuous:
            if alignment not in (None, CONTINUOUS_TABLE):
                raise ValueError(f"{task} reads `{CONTINUOUS_TABLE}` features, not {alignment!r}")
            self.table = CONTINUOUS_TABLE
        else:
            self.table = alignment or TOPIC_ALIGNMENT
            if self.table not in (*self.spec.aligned, UNALIGNED):
                raise ValueError(
                    f"topic alignment must be one of {', '.join((*self.spec.aligned, UNALIGNED))}, "
                    f"not {self.table!r}"
                )
            if audio:
                raise ValueError("audio=True is for the continuous tasks (wild, trust)")
        if normalize_audio and not audio:
            raise ValueError("normalize_audio=True standardises the raw audio: set audio=True")
        self.window, self.hop, self.eval_window = window, hop, eval_window
        self.segment_length = segment_length
        self.unaligned_lengths = unaligned_lengths
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.normalize = normalize
        self.audio = audio
        self.normalize_audio = normalize_audio
        self.memory_budget_mb = memory_budget_mb
        self.seed = seed
        self._store: Store | None = None
        # {name: Normalizer}: the statistics applied (after setup) or to apply (from a checkpoint)
        self.normalizers: dict[str, Normalizer] = {}
        self._training: Dataset | None = None
        self._evaluation: dict[str, Dataset] = {}

    # -- what a model needs to know before setup ---------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None:
            store = Store(self.store_path, self.memory_budget_mb)
            if store.task != self.task:
                raise StoreError(f"{store.path}: a {store.task} store, not {self.task}")
            self._store = store
        return self._store

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets of the labels, in order (default: every target the store has)."""
        if self._targets is None:
            return self.store.targets
        missing = [t for t in self._targets if t not in self.store.targets]
        if missing:
            raise StoreError(
                f"{self.store.path}: no target {', '.join(missing)}; "
                f"the store has: {', '.join(self.store.targets)}"
            )
        return self._targets

    @property
    def feature_dim(self) -> int:
        return sum(self.feature_dims.values())

    @property
    def feature_dims(self) -> dict[str, int]:
        """{feature set: width}, in the order the sets are concatenated in `features`."""
        if self.table == UNALIGNED:  # one table per feature set
            return {name: self.store.feature_dims(unaligned_table(name), [name])[0]
                    for name in self.features}
        return dict(zip(self.features, self.store.feature_dims(self.table, self.features),
                        strict=True))

    @property
    def stream_lengths(self) -> dict[str, int]:
        """Alignment `unaligned`: {feature set: rows kept per segment}."""
        return {name: self.unaligned_lengths.get(name, self.segment_length)
                for name in self.features}

    @property
    def num_classes(self) -> dict[str, int]:
        """{target: classes} for topic; empty for the continuous (regression) tasks."""
        if self.spec.continuous:
            return {}
        return {t: len(TOPIC_NAMES) if t == "topic" else EMOTION_CLASSES for t in self.targets}

    @property
    def audio_samples_per_step(self) -> int:
        return self.store.audio_rate * STEP_MS // 1000

    # -- datasets -----------------------------------------------------------------------------

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets once (Lightning calls this for every stage).

        Training items are windows (continuous) or segments (topic) of the train partition;
        evaluation items of every partition cover each labelled row or segment exactly once.
        """
        if self._evaluation:
            return
        store = self.store
        saved = self._saved_normalizers()
        if self.table == UNALIGNED:
            self._evaluation = unaligned_segments(store, self.features, self.stream_lengths,
                                                  self.targets, self.normalize, saved)
            self._training = self._evaluation["train"]
            if self.normalize:
                streams = self._training.streams
                self.normalizers = {name: streams[name].normalizer for name in self.features}
            store.close()
            return
        rows = store.rows(self.table, self.features)
        normalizer = None
        if self.normalize:
            normalizer = saved.get(self._fused_name)
            if normalizer is None:
                offsets = store.read(f"{self.table}/video_offsets")
                train = store.videos("train")
                normalizer = Normalizer.fit(rows, offsets[train], offsets[train + 1])
            self.normalizers = {self._fused_name: normalizer}
        if self.spec.continuous:
            audio = store.audio() if self.audio else None
            self._training, self._evaluation = self._sequences(
                store, rows, normalizer, audio, self._audio_normalizer(store, audio, saved))
        else:
            self._training, self._evaluation = self._segments(store, rows, normalizer)
        # Everything needed is read: close the handle so forked workers inherit none.
        store.close()

    # -- normalisation statistics: part of the trained model --------------------------------

    def _audio_normalizer(self, store: Store, audio: Audio | None,
                          saved: dict[str, Normalizer]) -> Normalizer | None:
        """The raw audio's mean and std: the checkpoint's, or fitted on the train videos."""
        if not self.normalize_audio:
            return None
        normalizer = saved.get(AUDIO_STATISTICS)
        if normalizer is None:
            train = store.videos("train")
            normalizer = Normalizer.fit(audio, audio.offsets[train], audio.offsets[train + 1])
        self.normalizers[AUDIO_STATISTICS] = normalizer
        return normalizer

    @property
    def _fused_name(self) -> str:
        return "+".join(self.features)

    def _expected_normalizers(self) -> dict[str, int]:
        """{name: width} of the statistics this module applies: the fused row, or each set;
        and the audio's."""
        expected = {AUDIO_STATISTICS: 1} if self.normalize_audio else {}
        if not self.normalize:
            return expected
        if self.table == UNALIGNED:
            return dict(self.feature_dims)
        return {self._fused_name: self.feature_dim, **expected}

    def _saved_normalizers(self) -> dict[str, Normalizer]:
        """The checkpoint's statistics, checked against this module's features and store."""
        saved = self.normalizers
        if not saved:
            return {}
        expected = self._expected_normalizers()
        if set(saved) != set(expected):
            raise MuseError(
                f"the checkpoint's normalisation statistics are for {', '.join(saved) or 'none'}, "
                f"this data module normalises {', '.join(expected) or 'nothing'}")
        for name, normalizer in saved.items():
            if normalizer.dim != expected[name]:
                raise StoreError(
                    f"{self.store.path}: {name} has {expected[name]} dimensions, the "
                    f"checkpoint's normalisation statistics {normalizer.dim}")
        return saved

    def state_dict(self) -> dict:
        """The normalisation statistics, which Lightning saves in every checkpoint."""
        if self.normalize or self.normalize_audio:
            self.setup()
        if not self.normalizers:
            return {}
        return {"normalization": {name: normalizer.state_dict()
                                  for name, normalizer in self.normalizers.items()}}

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Apply a checkpoint's statistics instead of fitting them (also after `setup`)."""
        saved = {str(name): Normalizer.from_state(values)
                 for name, values in state_dict.get("normalization", {}).items()}
        if not self._evaluation:
            self.normalizers = saved
            return
        current, self.normalizers = self.normalizers, saved
        try:
            self._saved_normalizers()  # the same checks as before a setup
        finally:
            self.normalizers = current
        for name, normalizer in saved.items():
            current[name].assign(normalizer)

    def load_checkpoint_state(self, checkpoint: str | Path) -> None:
        """`load_state_dict` with the state a Lightning checkpoint file saved for this class."""
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        self.load_state_dict(state.get(type(self).__qualname__, {}))

    # -- datasets of each task ----------------------------------------------------------------

    def _sequences(self, store: Store, rows, normalizer, audio, audio_normalizer):
        offsets = store.read(f"{self.table}/video_offsets")
        labels = np.stack(
            [store.read(f"{self.table}/labels/{t}") for t in self.targets], axis=1
        ).astype(np.float32)
        shared = dict(
            rows=rows, labels=labels, timestamps=store.read(f"{self.table}/timestamp"),
            video_ids=store.video_ids, normalizer=normalizer,
            audio=audio, audio_normalizer=audio_normalizer,
        )
        training = SequenceDataset(
            make_windows(offsets, store.videos("train"), self.window, self.hop), **shared
        )
        evaluation = {
            partition: SequenceDataset(
                make_windows(offsets, store.videos(partition), self.eval_window), **shared
            )
            for partition in ALL_PARTITIONS
        }
        return training, evaluation

    def _segments(self, store: Store, rows, normalizer):
        video_of_segment = store.segment_videos()
        labels = np.stack(
            [store.read(f"segments/labels/{t}") for t in self.targets], axis=1
        ).astype(np.int64)
        shared = dict(
            segment_offsets=store.read(f"{self.table}/segment_offsets"),
            length=self.segment_length, rows=rows, labels=labels,
            video_ids=store.video_ids[video_of_segment],
            segment_ids=store.read("segments/segment_id"), texts=store.read("segments/text"),
            normalizer=normalizer,
        )
        evaluation = {
            partition: SegmentDataset(
                np.flatnonzero(np.isin(video_of_segment, store.videos(partition))), **shared
            )
            for partition in ALL_PARTITIONS
        }
        return evaluation["train"], evaluation  # a segment is the same item in both roles

    @property
    def train_dataset(self) -> Dataset:
        """The training items: windows of the train videos, or train segments."""
        self.setup()
        return self._training

    def dataset(self, partition: str) -> Dataset:
        """The evaluation items of a partition, in store order."""
        if partition not in ALL_PARTITIONS:
            raise ValueError(f"unknown partition {partition!r}; choose one of {ALL_PARTITIONS}")
        self.setup()
        return self._evaluation[partition]

    # -- loaders ------------------------------------------------------------------------------

    def _loader(self, dataset: Dataset, train: bool, sampler: Sampler | None = None) -> DataLoader:
        if self.spec.continuous:
            collate = partial(collate_sequences, min_length=self.window if train else 0)
        elif self.table == UNALIGNED:
            collate = collate_unaligned
        else:
            collate = partial(collate_segments, min_length=self.segment_length)
        return DataLoader(
            dataset,
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            sampler=sampler,
            generator=torch.Generator().manual_seed(self.seed) if train else None,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_dataset, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("devel")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def _evaluation_loader(self, partition: str) -> DataLoader:
        """The partition, or under a multi-process trainer this process's unpadded share."""
        dataset, trainer = self.dataset(partition), self.trainer
        sampler = None if trainer is None else evaluation_sampler(
            dataset, trainer.world_size, trainer.global_rank, partition)
        return self._loader(dataset, train=False, sampler=sampler)

    def predict_dataloader(self, partition: str = "test") -> DataLoader:
        """Evaluation items of any partition, in order: every labelled row exactly once."""
        return self._loader(self.dataset(partition), train=False)

    def predictions_frame(
        self, batches: Iterable[dict], predictions: Iterable[object],
        targets: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """`predictions_frame` of `muse.data.datasets`, stacked predictions in `targets` order."""
        return predictions_frame(batches, predictions, self.spec.per_segment,
                                 targets or self.targets)
