"""`muse prepare --check`: what prepare would see in a package, from headers and samples only.

Reads the partition file, the first line of every label file, the first lines of one file per
feature folder, every transcript's first two lines and one wav header, so it takes seconds on
the full package, and writes nothing. Problems are listed (with the file) instead of stopping.
"""

from __future__ import annotations

import io
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from scipy.io import wavfile

from muse.errors import MuseError
from muse.package.layout import (
    PARTITION_FILE,
    STEP_COLUMNS,
    WORD_LEVEL_COLUMNS,
    feature_dir,
    is_word_level,
    label_dir,
    task_dir,
)
from muse.package.reader import expected_dim, feature_names, read_csv
from muse.store.prepare.model_inputs import CONF_DIR, ModelInputs, model_inputs
from muse.store.prepare.plan import plan
from muse.tasks import ALL_PARTITIONS, TASKS, Task

_SAMPLE_BYTES = 1 << 16
_BOM = b"\xef\xbb\xbf"


@dataclass
class Quirks:
    """The tolerated oddities seen while checking, by kind."""

    partition_duplicates: int = 0
    nan_cells: Counter = field(default_factory=Counter)  # "<alignment>/<feature>": in samples
    empty_transcripts: int = 0
    crlf_files: int = 0
    bom_files: int = 0

    def lines(self) -> list[str]:
        found = []
        if self.partition_duplicates:
            found.append(f"{self.partition_duplicates} duplicate partition row(s), dropped")
        if self.nan_cells:
            found.append(f"NaN cells in the sampled rows, imputed with 0: {dict(self.nan_cells)}")
        if self.empty_transcripts:
            found.append(f"{self.empty_transcripts} header-only transcript(s), read as empty "
                         "text")
        if self.crlf_files:
            found.append(f"{self.crlf_files} file(s) with CRLF line endings")
        if self.bom_files:
            found.append(f"{self.bom_files} file(s) starting with a UTF-8 byte-order mark")
        return found or ["none seen"]


def check_package(package: Path, tasks: list[str] | tuple[str, ...] = tuple(TASKS),
                  conf_dir: Path = CONF_DIR) -> str:
    """The report of `muse prepare --check` on `package` for the given sub-challenges."""
    package = Path(package)
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise MuseError(f"unknown task(s) {unknown}; choose from {list(TASKS)}")
    quirks = Quirks()
    out = [f"package {package}"]
    out += _partition_section(package, quirks)
    models = model_inputs(conf_dir) if (conf_dir / "model").is_dir() else None
    for name in tasks:
        out += _task_section(package, TASKS[name], quirks, models)
    out += ["quirks prepare will tolerate:"] + [f"  {line}" for line in quirks.lines()]
    return "\n".join(out)


def _partition_section(package: Path, quirks: Quirks) -> list[str]:
    path = package / PARTITION_FILE
    try:
        frame = read_csv(path, ("Id", "Proposal"))
    except MuseError as err:
        return [f"  ! {err}"]
    _note_line_endings(path, quirks)
    quirks.partition_duplicates = int(frame.duplicated("Id").sum())
    return [f"{path}: {frame['Id'].nunique()} videos"]


def _task_section(package: Path, task: Task, quirks: Quirks,
                  models: list[ModelInputs] | None) -> list[str]:
    out = [f"{task.name} ({task.folder})"]
    if not task_dir(package, task.name).is_dir():
        return out + ["  ! sub-challenge folder not found"]
    try:
        resolved = plan(package, task.name, None)
    except MuseError as err:
        return out + [f"  ! {err}"]
    counts = Counter(resolved.partition.values())
    out.append("  videos: " + ", ".join(f"{p} {counts.get(p, 0)}" for p in ALL_PARTITIONS))
    if resolved.unlabelled:
        out.append(f"    kept without label files (masked test labels): "
                   f"{sorted(resolved.unlabelled)}")
    if resolved.skipped:
        out.append(f"    skipped, no label files: {resolved.skipped}")
    orphans = sorted(_label_ids(package, task) - set(resolved.partition) - set(resolved.skipped))
    if orphans:
        out.append(f"    left out, labels but no partition entry: {orphans}")
    out += _feature_lines(package, task, resolved.videos, quirks)
    out += _label_lines(package, task, quirks)
    if not task.continuous:
        out.append(_transcript_line(package, task, quirks))
    out.append(_audio_line(package, task))
    if models is not None:
        out += _model_lines(package, task, models)
    return out


def _label_ids(package: Path, task: Task) -> set[int]:
    folder = label_dir(package, task.name, task.targets[0])
    return {int(p.stem) for p in folder.glob("*.csv") if p.stem.isdigit()}


def _feature_lines(package: Path, task: Task, videos: list[int], quirks: Quirks) -> list[str]:
    out = ["  feature sets:"]
    for alignment in (*task.aligned, "unaligned"):
        names = feature_names(package, task.name, alignment)
        if not names:
            out.append(f"    {alignment}: none")
            continue
        for name in names:
            out.append(f"    {alignment}/{name}: "
                       + _feature_summary(package, task, alignment, name, videos, quirks))
    return out


def _feature_summary(package: Path, task: Task, alignment: str, name: str, videos: list[int],
                     quirks: Quirks) -> str:
    folder = feature_dir(package, task.name, alignment) / name
    present = {int(p.stem) for p in folder.glob("*.csv") if p.stem.isdigit()}
    if not present:
        return "no files"
    sample = folder / f"{min(present)}.csv"
    _note_line_endings(sample, quirks)
    try:
        frame = _sample_frame(sample)
    except MuseError as err:
        return f"! {err}"
    keys = WORD_LEVEL_COLUMNS if is_word_level(alignment, name) else STEP_COLUMNS
    dim = len([c for c in frame.columns if c not in keys])
    expected = expected_dim(name)
    text = f"{dim} dims"
    if expected is not None and expected != dim:
        text += f" (! expected {expected}: prepare will refuse it)"
    nan = int(frame.drop(columns=[k for k in keys if k in frame.columns]).isna().sum().sum())
    if nan:
        quirks.nan_cells[f"{alignment}/{name}"] += nan
    missing = sorted(set(videos) - present)
    text += f", {len(present)} files"
    if missing:
        rule = "no frames" if alignment == "unaligned" else "! prepare will stop there"
        text += f", none for {len(missing)} video(s) {missing[:10]} ({rule})"
    return text


def _label_lines(package: Path, task: Task, quirks: Quirks) -> list[str]:
    out = ["  label files:"]
    for target in task.targets:
        folder = label_dir(package, task.name, target)
        paths = sorted(folder.glob("*.csv")) if folder.is_dir() else []
        if not paths:
            out.append(f"    {target}: ! no files")
            continue
        orders = Counter()
        for path in paths:
            orders[_header(path, quirks)] += 1
        described = "; ".join(f"{','.join(order)} ({n} files)" for order, n in orders.items())
        out.append(f"    {target}: {described}")
    return out


def _transcript_line(package: Path, task: Task, quirks: Quirks) -> str:
    root = task_dir(package, task.name) / "transcription_segments"
    if not root.is_dir():
        return "  transcripts: ! none (every segment's text will be empty)"
    files = empty = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if not name.endswith(".csv"):
                continue
            files += 1
            path = Path(folder) / name
            with open(path, "rb") as handle:
                head = handle.read(_SAMPLE_BYTES)
            _note_bytes(head, quirks)
            if len([line for line in head.splitlines() if line.strip()]) < 2:
                empty += 1
    quirks.empty_transcripts += empty
    return f"  transcripts: {files} files, {empty} header-only (empty text)"


def _audio_line(package: Path, task: Task) -> str:
    root = task_dir(package, task.name) / "audio_segments"
    if not root.is_dir():
        return "  audio: none (stored as silence; End2You has no audio to read)"
    wavs = [Path(folder) / name for folder, _, names in os.walk(root) for name in names
            if name.endswith(".wav")]
    if not wavs:
        return "  audio: no wav files"
    sample = min(wavs)
    try:
        rate, samples = wavfile.read(sample, mmap=True)
        channels = samples.shape[1] if samples.ndim == 2 else 1
        described = f"{rate} Hz, {channels} channel(s), {samples.dtype}"
        del samples  # the memory map holds the file open
    except (ValueError, OSError) as err:
        described = f"! {sample}: unreadable wav ({err})"
    return f"  audio: {len(wavs)} wav files ({described}, e.g. {sample.name})"


def _model_lines(package: Path, task: Task, models: list[ModelInputs]) -> list[str]:
    present = {name for alignment in (*task.aligned, "unaligned")
               for name in feature_names(package, task.name, alignment)}
    root = task_dir(package, task.name)
    absent = []
    for model in models:
        if task.name not in model.tasks:
            continue
        lacking = [f for f in model.features if f not in present]
        if model.audio and not (root / "audio_segments").is_dir():
            lacking.append("audio")
        if model.transcripts and not (root / "transcription_segments").is_dir():
            lacking.append("transcripts")
        if lacking:
            absent.append(f"    {model.model}: {', '.join(lacking)}")
    if not absent:
        return ["  models: every model's default inputs are present"]
    return ["  models whose default inputs are absent (choose others with features=...):"] + absent


def _sample_frame(path: Path) -> pd.DataFrame:
    """The first rows of a file (up to 64 KiB of whole lines)."""
    with open(path, "rb") as handle:
        head = handle.read(_SAMPLE_BYTES)
    if len(head) == _SAMPLE_BYTES and b"\n" in head:
        head = head[: head.rfind(b"\n") + 1]
    try:
        return pd.read_csv(io.BytesIO(head), encoding="utf-8-sig")
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise MuseError(f"{path}: unreadable CSV ({err})") from None


def _header(path: Path, quirks: Quirks) -> tuple[str, ...]:
    with open(path, "rb") as handle:
        first = handle.readline()
    _note_bytes(first, quirks)
    text = first.removeprefix(_BOM).decode("utf-8", "replace").strip()
    return tuple(cell.strip() for cell in text.split(","))


def _note_line_endings(path: Path, quirks: Quirks) -> None:
    with open(path, "rb") as handle:
        _note_bytes(handle.readline(), quirks)


def _note_bytes(head: bytes, quirks: Quirks) -> None:
    if head.startswith(_BOM):
        quirks.bom_files += 1
    if head.split(b"\n", 1)[0].endswith(b"\r"):
        quirks.crlf_files += 1
