"""Loader throughput: `MuseDataModule.train_dataloader()` against plain numpy indexing.

Generates a synthetic package and prepares its MuSe-Wild store (or reads `--store`), then times
full training epochs (windows per second; batch size 50, window 50, no workers) of

* the reference: the same arrays held in memory as plain numpy, window starts precomputed,
  per batch one slice per window of the fused features, labels and timestamps (and, with
  audio, of the audio samples: one slice when the window's steps follow each other in the
  signal, a gather otherwise), padded and stacked into torch tensors - the minimum a loader
  must do to hand out the same batch (checked equal to the loader's on one batch);
* the loader with everything in memory (the default budget) and streamed (memory_budget_mb=0);

each without and with `audio=True`. Every figure is the best of `--repeats` epochs after one
warm-up epoch, the contenders' epochs interleaved (`--batches N`: the first N batches of each
epoch instead). Prints the figures and the ratios loader / reference (goal: in memory >= 0.8).
Run:

    python benchmarks/loader_throughput.py --videos 20 --minutes 8
    python benchmarks/loader_throughput.py --store data/wild.h5
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from muse.data.datamodule import CONTINUOUS_TABLE, MuseDataModule
from muse.data.datasets import collate_sequences
from muse.package.layout import STEP_MS
from muse.store.reader import INT16_SCALE

TASK = "wild"


class Reference:
    """The train windows of a wild store, batched with plain numpy from in-memory arrays."""

    def __init__(self, path: Path, features: Sequence[str], window: int, hop: int,
                 audio: bool) -> None:
        table = CONTINUOUS_TABLE
        with h5py.File(path, "r") as file:
            targets = json.loads(file.attrs["targets"])
            self.fused = np.concatenate(
                [file[f"{table}/features/{name}"][()] for name in features], axis=1
            ).astype(np.float32, copy=False)
            self.labels = np.stack(
                [file[f"{table}/labels/{t}"][()] for t in targets], axis=1
            ).astype(np.float32)
            self.timestamps = file[f"{table}/timestamp"][()]
            offsets = file[f"{table}/video_offsets"][()]
            self.video_ids = file["videos/id"][()]
            partitions = file["videos/partition"].asstr()[()]
            if audio:
                rate = int(file.attrs["audio_rate"])
                self.samples = file["audio/samples"][()]
                audio_offsets = file["audio/video_offsets"][()]
        self.window = window
        # Window starts: every `hop` rows of each train video until one reaches its end.
        starts, stops, videos = [], [], []
        for video in np.flatnonzero(partitions == "train"):
            first, end = int(offsets[video]), int(offsets[video + 1])
            start = first
            while start < end:
                starts.append(start)
                stops.append(min(start + window, end))
                videos.append(video)
                if start + window >= end:
                    break
                start += hop
        self.start, self.stop = np.asarray(starts), np.asarray(stops)
        self.video = np.asarray(videos)
        self.audio = audio
        if audio:
            # First sample of each row's step and end of its video's signal, precomputed.
            self.step = rate * STEP_MS // 1000
            row_video = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
            self.row_sample = audio_offsets[row_video] + self.timestamps * rate // 1000
            self.row_end = audio_offsets[row_video + 1]
            # A window whose steps follow each other inside the signal is one plain slice.
            first, last = self.row_sample[self.start], self.row_sample[self.stop - 1]
            self.contiguous = ((last - first == (self.stop - self.start - 1) * self.step)
                               & (last + self.step <= self.row_end[self.start]))
            self.offsets_in_step = np.arange(self.step)

    def __len__(self) -> int:
        return len(self.start)

    def batches(self, batch_size: int, rng: np.random.Generator) -> Iterator[dict]:
        order = rng.permutation(len(self))
        for begin in range(0, len(order), batch_size):
            yield self.batch(order[begin:begin + batch_size])

    def batch(self, windows: np.ndarray) -> dict:
        n, length = len(windows), self.window
        features = np.zeros((n, length, self.fused.shape[1]), dtype=np.float32)
        labels = np.full((n, length, self.labels.shape[1]), np.nan, dtype=np.float32)
        timestamps = np.full((n, length), -1, dtype=np.int64)
        mask = np.zeros((n, length), dtype=bool)
        audio = np.zeros((n, length, self.step), dtype=np.float32) if self.audio else None
        for k, w in enumerate(windows.tolist()):
            start, stop = int(self.start[w]), int(self.stop[w])
            size = stop - start
            features[k, :size] = self.fused[start:stop]
            labels[k, :size] = self.labels[start:stop]
            timestamps[k, :size] = self.timestamps[start:stop]
            mask[k, :size] = True
            if audio is not None:
                self._audio(audio[k, :size], w, start, stop)
        batch = {
            "features": torch.from_numpy(features), "mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(labels),
            "video_id": torch.from_numpy(self.video_ids[self.video[windows]]),
            "timestamp": torch.from_numpy(timestamps),
        }
        if audio is not None:
            batch["audio"] = torch.from_numpy(audio)
        return batch

    def _audio(self, out: np.ndarray, w: int, start: int, stop: int) -> None:
        if self.contiguous[w]:
            first = int(self.row_sample[start])
            np.multiply(self.samples[first:first + out.size].reshape(out.shape),
                        1.0 / INT16_SCALE, out=out)
            return
        index = self.row_sample[start:stop, None] + self.offsets_in_step
        end = self.row_end[start]
        values = self.samples[np.minimum(index, end - 1)]
        values[index >= end] = 0
        np.multiply(values, 1.0 / INT16_SCALE, out=out)


def same_batches(reference: Reference, dataset, window: int) -> None:
    """The reference builds the loader's batches: compare one batch of spread-out windows."""
    chosen = np.linspace(0, len(reference) - 1, min(len(reference), 50)).astype(np.int64)
    expected = collate_sequences([dataset[int(i)] for i in chosen], min_length=window)
    got = reference.batch(chosen)
    for key, value in expected.items():
        other = got[key]
        if value.is_floating_point():  # NaN labels: compare them as a number
            value, other = value.nan_to_num(7.0), other.nan_to_num(7.0)
        if not torch.equal(value, other):
            raise RuntimeError(f"the reference's {key} differs from the loader's")


def timed_epoch(epoch: Callable[[], Iterable[dict]], limit: int | None) -> tuple[int, float]:
    """Windows served and seconds taken by one epoch (or its first `limit` batches)."""
    windows, started = 0, time.perf_counter()
    for k, batch in enumerate(epoch()):
        windows += len(batch["video_id"])
        if limit is not None and k + 1 >= limit:
            break
    return windows, time.perf_counter() - started


def best_rates(epochs: dict[str, Callable[[], Iterable[dict]]], repeats: int,
               limit: int | None) -> dict[str, dict]:
    """Windows per second of each epoch: the best of `repeats` after one warm-up epoch.

    The repeats of the contenders are interleaved so that they share whatever else the
    machine is doing at the time.
    """
    for epoch in epochs.values():
        timed_epoch(epoch, limit)
    gc.collect()
    times: dict[str, list[float]] = {name: [] for name in epochs}
    windows = {}
    for _ in range(repeats):
        for name, epoch in epochs.items():
            windows[name], seconds = timed_epoch(epoch, limit)
            times[name].append(seconds)
    return {
        name: {"windows": windows[name], "best_s": round(min(times[name]), 4),
               "median_s": round(float(np.median(times[name])), 4),
               "windows_per_s": round(windows[name] / min(times[name]), 1)}
        for name in epochs
    }


def measure(store: Path, features: list[str], audio: bool, args) -> dict:
    reference = Reference(store, features, args.window, args.window, audio)
    rng = np.random.default_rng(0)
    epochs = {"reference": lambda: reference.batches(args.batch_size, rng)}
    for mode, budget in (("memory", 1e9), ("streamed", 0)):
        module = MuseDataModule(store, TASK, features, window=args.window, hop=args.window,
                                batch_size=args.batch_size, num_workers=0, audio=audio,
                                memory_budget_mb=budget)
        dataset = module.train_dataset
        if len(dataset) != len(reference):
            raise RuntimeError(f"{len(dataset)} loader windows, {len(reference)} reference "
                               "windows")
        if dataset.rows.in_memory != (mode == "memory"):
            raise RuntimeError(f"{mode} loader has in_memory={dataset.rows.in_memory}")
        if mode == "memory":
            same_batches(reference, dataset, args.window)
        epochs[mode] = module.train_dataloader
    figures = best_rates(epochs, args.repeats, args.batches)
    ref = figures["reference"]["windows_per_s"]
    return {
        **figures,
        "ratio_memory_over_reference": round(figures["memory"]["windows_per_s"] / ref, 3),
        "ratio_streamed_over_reference": round(figures["streamed"]["windows_per_s"] / ref, 3),
    }


def describe(store: Path, features: list[str]) -> dict:
    with h5py.File(store, "r") as file:
        table = file[CONTINUOUS_TABLE]
        return {
            "store": str(store), "store_mb": round(store.stat().st_size / 2**20, 1),
            "videos": len(file["videos/id"]),
            "train_videos": int((file["videos/partition"].asstr()[()] == "train").sum()),
            "rows": int(table["timestamp"].shape[0]),
            "feature_dim": sum(table[f"features/{n}"].shape[1] for n in features),
            "audio_rate": int(file.attrs.get("audio_rate", 0)),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--features", default="egemaps,fasttext,vggface")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", type=Path, default=None,
                        help="an existing wild store; default: synthesize and prepare one")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--batches", type=int, default=None,
                        help="time this many batches per epoch instead of full epochs")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--window", type=int, default=50)
    args = parser.parse_args()
    features = [f.strip() for f in args.features.split(",") if f.strip()]

    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            from muse.package.synthetic import synthesize
            from muse.store.prepare import prepare

            package = synthesize(Path(tmp) / "package", videos=args.videos,
                                 minutes=args.minutes, seed=args.seed, features=features)
            store = prepare(package, Path(tmp) / "data", tasks=[TASK])[TASK]
        result = {**describe(store, features), "batch_size": args.batch_size,
                  "window": args.window, "num_workers": 0, "repeats": args.repeats}
        result["features_only"] = measure(store, features, False, args)
        if result["audio_rate"] > 0:
            result["with_audio"] = measure(store, features, True, args)
        else:
            result["with_audio"] = "the store has no audio"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
