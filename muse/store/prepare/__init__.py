"""`muse prepare`: convert the official CSV package into one HDF5 store per sub-challenge.

Streams the package video by video (memory holds one video), writes each store atomically
(docs/hdf5-store.md), and does no work when the package and options are unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
from tqdm.auto import tqdm

from muse.errors import MuseError, StoreError
from muse.store.prepare import continuous, topic
from muse.store.prepare.estimate import expected_store_bytes
from muse.store.prepare.plan import PreparePlan, plan
from muse.store.prepare.stats import PrepareStats
from muse.store.writer import StoreWriter, remove_stale_temp_files
from muse.tasks import TASKS

log = logging.getLogger(__name__)


def store_path(data_dir: Path, task: str) -> Path:
    return Path(data_dir) / f"{task}.h5"


def prepare(package: Path, out: Path, tasks: list[str] | tuple[str, ...] = tuple(TASKS),
            features: list[str] | None = None, audio_rate: int = 8000) -> dict[str, Path]:
    """Prepare the given sub-challenges; returns {task: store path}. `audio_rate=0`: no audio."""
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise MuseError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    if Path(out).exists() and not Path(out).is_dir():
        raise StoreError(f"{out}: the output is a file; give a folder for the stores")
    if Path(out).is_dir():
        for task in TASKS:  # also those of stores not prepared this time, or up to date
            remove_stale_temp_files(store_path(out, task))
    return {task: prepare_task(Path(package), Path(out), task, features, audio_rate)
            for task in tasks}


def prepare_task(package: Path, out: Path, task: str, features: list[str] | None,
                 audio_rate: int) -> Path:
    target = store_path(out, task)
    resolved = plan(package, task, features)
    fingerprint = resolved.fingerprint(audio_rate)
    if _up_to_date(target, fingerprint):
        log.info("%s: up to date with %s, nothing to do", target, package)
        return target
    stats = PrepareStats()
    with StoreWriter(target, task, list(resolved.task.targets), fingerprint, audio_rate,
                     expected_bytes=expected_store_bytes(resolved, audio_rate),
                     package=str(Path(package).resolve())) as writer:
        writer.write("videos/id", np.asarray(resolved.videos, np.int64))
        writer.write("videos/partition",
                     np.asarray([resolved.partition[v] for v in resolved.videos], dtype=object))
        _write_videos(resolved, writer, stats, audio_rate)
        extra = {} if resolved.task.continuous else {"empty_transcripts": stats.empty_transcripts}
        writer.finish(nan_cells=dict(stats.nan_cells), empty_steps=dict(stats.empty_steps),
                      duplicate_keys=dict(stats.duplicate_keys), skipped_videos=resolved.skipped,
                      **extra,
                      dims={f"{a}/{f}": d for (a, f), d in resolved.dims.items()})
    _report(target, resolved, stats)
    return target


def _write_videos(resolved: PreparePlan, writer: StoreWriter, stats: PrepareStats,
                  audio_rate: int) -> None:
    offsets = topic.SegmentOffsets()
    for video in tqdm(resolved.videos, desc=f"prepare {resolved.task.name}", unit="video"):
        if resolved.task.continuous:
            continuous.prepare_video(resolved, video, writer, stats, audio_rate)
        else:
            topic.prepare_video(resolved, video, writer, stats, audio_rate, offsets)
        writer.checkpoint()
    for alignment, values in offsets.offsets.items():
        writer.write(f"{alignment}/segment_offsets", np.asarray(values, np.int64))


def _up_to_date(path: Path, fingerprint: str) -> bool:
    if not path.exists():
        return False
    try:
        with h5py.File(path, "r") as store:
            attrs = store.attrs
            return bool(attrs.get("complete")) and attrs.get("fingerprint") == fingerprint
    except OSError:
        return False


def _report(path: Path, resolved: PreparePlan, stats: PrepareStats) -> None:
    log.info("%s: %d videos written", path, len(resolved.videos))
    if stats.nan_cells:
        log.warning("%s: NaN cells imputed with 0: %s", path, dict(stats.nan_cells))
    if stats.empty_steps:
        log.info("%s: label steps without frames, stored as zeros: %s", path,
                 dict(stats.empty_steps))
    if stats.duplicate_keys:
        log.warning("%s: word rows repeating an earlier word's (start, end, segment_id), "
                    "kept: %s", path, dict(stats.duplicate_keys))
    if not resolved.task.continuous:
        log.info("%s: %d segment(s) without transcript words (missing or header-only file), "
                 "stored with an empty text", path, stats.empty_transcripts)
    if stats.missing_audio:
        log.warning("%s: %d segment wav file(s) missing, stored as silence", path,
                    stats.missing_audio)
    if stats.missing_unaligned:
        log.info("%s: %d unaligned feature file(s) absent (no rows for that video)", path,
                 stats.missing_unaligned)
