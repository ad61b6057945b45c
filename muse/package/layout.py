"""Facts about the official challenge package: folders, feature sets and table columns.

Everything that reads or writes the package layout (`muse synth`, `muse prepare`, `muse score`)
takes its names from here, so the layout is written down once; the sub-challenges' own rules
(targets, scored targets, partitions, the score) are in `muse.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from muse.tasks import TASKS

STEP_MS = 250
PARTITION_FILE = Path("metadata") / "partition.csv"
TOPIC_MAPPING_FILE = Path("metadata") / "topic_class_mapping.csv"
CEILINGS_FILE = Path("metadata") / "ceilings.json"

TOPIC_NAMES = (
    "General Information",
    "Costs",
    "Performance",
    "Quality & Aesthetic",
    "Safety",
    "Comfort",
    "Exterior Features",
    "Interior Features",
    "Handling/Driving Experience",
    "User Experience",
)
EMOTION_CLASSES = 3  # low, medium, high: tertiles of the segment mean


@dataclass(frozen=True)
class FeatureSet:
    """One of the package's feature sets as the challenge describes it."""

    name: str
    dim: int
    modality: str  # audio | vision | text


FEATURE_SETS: dict[str, FeatureSet] = {
    f.name: f
    for f in (
        FeatureSet("egemaps", 88, "audio"),
        FeatureSet("lld", 130, "audio"),
        FeatureSet("deepspectrum", 4096, "audio"),
        FeatureSet("vggface", 512, "vision"),
        FeatureSet("xception", 2048, "vision"),
        FeatureSet("gocar", 350, "vision"),
        FeatureSet("openpose", 54, "vision"),
        FeatureSet("au", 35, "vision"),
        FeatureSet("gaze", 288, "vision"),
        FeatureSet("landmarks_2d", 136, "vision"),
        FeatureSet("landmarks_3d", 204, "vision"),
        FeatureSet("pdm", 40, "vision"),
        FeatureSet("pose", 6, "vision"),
        FeatureSet("fasttext", 300, "text"),
    )
}
UNALIGNED_ONLY = frozenset({"lld"})  # 10 ms hop: never label-aligned in the package
WORD_LEVEL_COLUMNS = ("start", "end", "segment_id")
STEP_COLUMNS = ("timestamp", "segment_id")


def task_dir(package: Path, task: str) -> Path:
    return Path(package) / TASKS[task].folder


def feature_dir(package: Path, task: str, alignment: str) -> Path:
    return task_dir(package, task) / "feature_segments" / alignment


def label_dir(package: Path, task: str, target: str) -> Path:
    return task_dir(package, task) / "label_segments" / target


def aggregated_file(package: Path, task: str, partition: str) -> Path:
    return label_dir(package, task, "aggregated") / f"{partition}.csv"


def audio_file(package: Path, task: str, video_id: int, segment_id: int) -> Path:
    folder = task_dir(package, task) / "audio_segments" / str(video_id)
    return folder / f"{video_id}_{segment_id}.wav"


def transcript_file(package: Path, task: str, video_id: int, segment_id: int) -> Path:
    return (
        task_dir(package, task) / "transcription_segments" / str(video_id)
        / f"{video_id}_{segment_id}.csv"
    )


def is_word_level(alignment: str, feature: str) -> bool:
    """Word-level files carry start/end instead of a timestamp."""
    return alignment == "fasttext_aligned" or (alignment == "unaligned" and feature == "fasttext")
