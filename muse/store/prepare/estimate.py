"""How large a store will be, from the sizes of the package files a plan reads.

Used to check the free disk space before a conversion starts (a full disk half-way through a
36-minute run wastes the run). Each feature folder's CSV bytes are turned into a number of cells
with the bytes per cell of a sample of its first file, and each cell is stored as 4 bytes; wav
bytes are turned into stored int16 samples with the format of the first wav file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.io import wavfile

from muse.package.layout import STEP_MS, task_dir
from muse.package.reader import continuous_label_path, feature_path
from muse.store.prepare.plan import PreparePlan
from muse.store.writer import CHUNK_BYTES

_SAMPLE_BYTES = 1 << 16
_STORED_CELL_BYTES = 4  # float32 values; the int64 keys are a few columns of hundreds


def expected_store_bytes(plan: PreparePlan, audio_rate: int) -> int:
    """The estimated size of the store `plan` writes (features, label-step means, audio)."""
    total = 0
    for alignment, names in plan.features.items():
        for feature in names:
            paths = [feature_path(plan.package, plan.task.name, alignment, feature, v)
                     for v in plan.videos]
            # A dataset's last chunk is written whole, however few rows it holds.
            total += _csv_cells(paths) * _STORED_CELL_BYTES + CHUNK_BYTES
    steps = _label_steps(plan)
    for feature in plan.frame_means:
        dim = plan.dims.get(("unaligned", feature)) or 0
        total += steps * dim * _STORED_CELL_BYTES + CHUNK_BYTES
    if audio_rate:
        total += _audio_bytes(plan, audio_rate, steps)
    return total


def _csv_cells(paths: list[Path]) -> int:
    sizes = [(p, p.stat().st_size) for p in paths if p.is_file()]
    if not sizes:
        return 0
    sample_path = max(sizes, key=lambda item: item[1])[0]
    with open(sample_path, "rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    whole = sample[: sample.rfind(b"\n") + 1] or sample
    cells = whole.count(b",") + whole.count(b"\n")
    return int(sum(size for _, size in sizes) * cells / max(len(whole), 1))


def _label_steps(plan: PreparePlan) -> int:
    """Label-step rows of a continuous task, from its first target's label files."""
    if not plan.task.continuous:
        return 0
    paths = [continuous_label_path(plan.package, plan.task.name, plan.task.targets[0], v)
             for v in plan.videos]
    existing = [p for p in paths if p.is_file()]
    if not existing:
        return 0
    with open(existing[0], "rb") as handle:
        sample = handle.read(_SAMPLE_BYTES)
    lines = max(sample.count(b"\n"), 1)
    return int(sum(p.stat().st_size for p in existing) * lines / max(len(sample), 1))


def _audio_bytes(plan: PreparePlan, audio_rate: int, steps: int) -> int:
    folder = task_dir(plan.package, plan.task.name) / "audio_segments"
    wavs = []
    for video in plan.videos:
        video_folder = folder / str(video)
        if video_folder.is_dir():
            wavs.extend(entry for entry in os.scandir(video_folder)
                        if entry.name.endswith(".wav"))
    if not wavs:
        # Every video still gets a silent signal as long as its labelled time.
        return int(steps * STEP_MS / 1000 * audio_rate * 2)
    try:
        rate, samples = wavfile.read(wavs[0].path, mmap=True)
    except (ValueError, OSError):
        return sum(w.stat().st_size for w in wavs)
    frame_bytes = max(samples.itemsize * (samples.shape[1] if samples.ndim == 2 else 1), 1)
    del samples  # the memory map holds the file open
    stored_per_byte = audio_rate / rate * np.dtype(np.int16).itemsize / frame_bytes
    return int(sum(w.stat().st_size for w in wavs) * stored_per_byte)
