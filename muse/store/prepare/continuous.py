"""Preparing one video of MuSe-Wild or MuSe-Trust: label steps, aligned and unaligned features,
and the label-step means of the frame-rate features the package has unaligned only (LLD)."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np

from muse.package.layout import STEP_MS
from muse.package.reader import (
    FeatureTable,
    check_same_rows,
    feature_path,
    read_continuous_labels,
    read_feature,
)
from muse.store.prepare.audio import segment_starts, video_audio
from muse.store.prepare.frames import step_means
from muse.store.prepare.plan import PreparePlan
from muse.store.prepare.stats import PrepareStats
from muse.store.writer import StoreWriter

ALIGNED = "label_aligned"


def prepare_video(plan: PreparePlan, video: int, writer: StoreWriter, stats: PrepareStats,
                  audio_rate: int) -> None:
    task = plan.task
    aligned = plan.features.get(ALIGNED, [])
    tables = {f: read_feature(plan.package, task.name, ALIGNED, f, video, plan.dims[(ALIGNED, f)])
              for f in aligned}
    if video in plan.unlabelled:
        if not tables:
            raise stats.no_rows_error(plan, video)
        reference = next(iter(tables.values()))
        timestamp, segment_id = reference.timestamp, reference.segment_id
        labels = {t: np.full(len(timestamp), np.nan, np.float32) for t in task.targets}
    else:
        read = read_continuous_labels(plan.package, task.name, task.targets, video)
        timestamp, segment_id, labels = read.timestamp, read.segment_id, read.values
    arrays: dict[str, np.ndarray] = {"timestamp": timestamp, "segment_id": segment_id}
    arrays.update({f"labels/{t}": v for t, v in labels.items()})
    for feature, table in tables.items():
        path = feature_path(plan.package, task.name, ALIGNED, feature, video)
        check_same_rows(path, (timestamp, segment_id), (table.timestamp, table.segment_id),
                        ("timestamp", "segment_id"))
        stats.add_feature(plan, ALIGNED, feature, table)
        arrays[f"features/{feature}"] = table.values
    # The unaligned files are read once: written as they are, and averaged per label step.
    frames = write_unaligned(plan, video, writer, stats, keep=plan.frame_means)
    for feature in plan.frame_means:
        arrays[f"features/{feature}"] = _label_step_means(plan, feature, frames.get(feature),
                                                          timestamp, stats)
    writer.table(ALIGNED).append(len(timestamp), arrays)
    writer.table(ALIGNED).close_video()

    if audio_rate:
        end_ms = int(timestamp.max()) + STEP_MS if len(timestamp) else 0
        signal, missing = video_audio(plan.package, task.name, video,
                                      segment_starts(timestamp, segment_id), end_ms, audio_rate)
        stats.missing_audio += missing
        writer.table("audio").append(len(signal), {"samples": signal})
        writer.table("audio").close_video()


def _label_step_means(plan: PreparePlan, feature: str, table: FeatureTable | None,
                      timestamp: np.ndarray, stats: PrepareStats) -> np.ndarray:
    """A frame-rate feature per label step; a video without its file has no frame in any step."""
    if table is None:
        frame_time = np.empty(0, np.int64)
        frames = np.empty((0, plan.dims[("unaligned", feature)]), np.float32)
    else:
        frame_time, frames = table.timestamp, table.values
    values, empty = step_means(frame_time, frames, timestamp)
    if empty.any():
        stats.empty_steps[f"{ALIGNED}/{feature}"] += int(empty.sum())
    return values


def write_unaligned(plan: PreparePlan, video: int, writer: StoreWriter, stats: PrepareStats,
                    keep: Collection[str] = ()) -> dict[str, FeatureTable]:
    """Append every unaligned feature file of a video (a missing file means no rows); returns
    the tables read of the feature sets named in `keep`."""
    kept = {}
    for feature in plan.features.get("unaligned", []):
        table_name = f"unaligned/{feature}"
        if feature_path(plan.package, plan.task.name, "unaligned", feature, video).exists():
            table = read_feature(plan.package, plan.task.name, "unaligned", feature, video,
                                 plan.dims[("unaligned", feature)])
            stats.add_feature(plan, "unaligned", feature, table)
            arrays = {"timestamp": table.timestamp, "segment_id": table.segment_id,
                      "features/" + feature: table.values}
            if table.end is not None:
                arrays["end"] = table.end
            writer.table(table_name).append(len(table.timestamp), arrays)
            if feature in keep:
                kept[feature] = table
        else:
            stats.missing_unaligned += 1
        writer.table(table_name).close_video()
    return kept
