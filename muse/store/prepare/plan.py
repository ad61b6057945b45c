"""What one `muse prepare` run of a sub-challenge will read: videos, feature sets, fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from muse.errors import PackageError
from muse.package.layout import PARTITION_FILE, UNALIGNED_ONLY, label_dir, task_dir
from muse.package.reader import expected_dim, feature_names, read_partition
from muse.store.writer import SCHEMA_VERSION
from muse.tasks import TASKS, Task

log = logging.getLogger(__name__)

# What prepare derives from the package beyond copying it; a change re-prepares every store.
# 2: label-aligned means of the unaligned-only (frame-rate) feature sets on wild and trust.
PREPARE_FORMAT = 2


@dataclass
class PreparePlan:
    """The resolved inputs of one store: which videos and which (alignment, feature) pairs."""

    task: Task
    package: Path
    videos: list[int]  # sorted ids that will be stored
    partition: dict[int, str]
    unlabelled: set[int]  # test videos without label files: stored with missing labels
    features: dict[str, list[str]]  # alignment -> feature names
    dims: dict[tuple[str, str], int | None] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)

    @property
    def frame_means(self) -> list[str]:
        """Unaligned-only feature sets that continuous tasks also store per label step, as the
        mean of their frames (muse.store.prepare.frames): the package has no aligned file."""
        if not self.task.continuous:
            return []
        return [f for f in self.features.get("unaligned", []) if f in UNALIGNED_ONLY]

    def fingerprint(self, audio_rate: int) -> str:
        """Hash of the files this plan reads (name, size, mtime) and of the options."""
        digest = hashlib.sha256()
        options = {"schema": SCHEMA_VERSION, "format": PREPARE_FORMAT, "videos": self.videos,
                   "features": self.features, "audio_rate": audio_rate}
        digest.update(json.dumps(options, sort_keys=True).encode())
        roots = [self.package / PARTITION_FILE, task_dir(self.package, self.task.name)]
        for root in roots:
            for path in _walk(root):
                stat = path.stat()
                digest.update(f"{path.relative_to(self.package)}|{stat.st_size}|"
                              f"{stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()


def _walk(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        found.extend(Path(folder) / name for name in sorted(files))
    return found


def plan(package: Path, task_name: str, features: list[str] | None) -> PreparePlan:
    """Resolve videos (with or without labels) and the feature folders to read for one task."""
    task = TASKS[task_name]
    package = Path(package)
    if not task_dir(package, task_name).is_dir():
        raise PackageError(f"{task_dir(package, task_name)}: sub-challenge folder not found")
    partition = read_partition(package)
    labelled = _labelled_videos(package, task)
    orphans = sorted(labelled - partition.keys())
    if orphans:
        log.warning("%s: %d video(s) have labels but no partition entry, left out: %s",
                    task.folder, len(orphans), orphans[:20])
    skipped = sorted(v for v in partition if v not in labelled and partition[v] != "test")
    if skipped:
        log.warning("%s: %d video(s) without labels skipped: %s", task.folder, len(skipped),
                    skipped)
    unlabelled = {v for v in partition if v not in labelled and partition[v] == "test"}
    if unlabelled:
        log.warning("%s: %d test video(s) have no label files (masked test labels); their "
                    "rows come from the features", task.folder, len(unlabelled))
    videos = sorted((labelled & partition.keys()) | unlabelled)
    chosen = _choose_features(package, task, features)
    result = PreparePlan(task, package, videos, {v: partition[v] for v in videos}, unlabelled,
                         chosen, skipped=skipped)
    result.dims = {(a, f): expected_dim(f) for a, names in chosen.items() for f in names}
    return result


def _labelled_videos(package: Path, task: Task) -> set[int]:
    """Videos with a label file for the task's first target (the others are checked on read)."""
    folder = label_dir(package, task.name, task.targets[0])
    if not folder.is_dir():
        raise PackageError(f"{folder}: label folder not found")
    videos = set()
    for path in folder.glob("*.csv"):
        if path.stem.isdigit():
            videos.add(int(path.stem))
    return videos


def _choose_features(package: Path, task: Task, wanted: list[str] | None) -> dict[str, list[str]]:
    alignments = (*task.aligned, "unaligned")
    present = {a: feature_names(package, task.name, a) for a in alignments}
    if wanted is None:
        return present
    found = {name for names in present.values() for name in names}
    missing = sorted(set(wanted) - found)
    if missing:
        raise PackageError(f"{task_dir(package, task.name) / 'feature_segments'}: no folder for "
                           f"feature set(s) {missing}; the package has {sorted(found)}")
    return {a: [n for n in names if n in wanted] for a, names in present.items()}
