"""Preparing one video of MuSe-Wild or MuSe-Trust: label steps, aligned and unaligned features."""

from __future__ import annotations

import numpy as np

from muse.data.layout import STEP_MS
from muse.data.package import (
    check_same_rows,
    feature_path,
    read_continuous_labels,
    read_feature,
)
from muse.data.prepare.audio import segment_starts, video_audio
from muse.data.prepare.plan import PreparePlan
from muse.data.prepare.stats import PrepareStats
from muse.data.store_writer import StoreWriter

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
    writer.table(ALIGNED).append(len(timestamp), arrays)
    writer.table(ALIGNED).close_video()

    write_unaligned(plan, video, writer, stats)
    if audio_rate:
        end_ms = int(timestamp.max()) + STEP_MS if len(timestamp) else 0
        signal, missing = video_audio(plan.package, task.name, video,
                                      segment_starts(timestamp, segment_id), end_ms, audio_rate)
        stats.missing_audio += missing
        writer.table("audio").append(len(signal), {"samples": signal})
        writer.table("audio").close_video()


def write_unaligned(plan: PreparePlan, video: int, writer: StoreWriter,
                    stats: PrepareStats) -> None:
    """Append every unaligned feature file of a video; a missing file means no rows."""
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
        else:
            stats.missing_unaligned += 1
        writer.table(table_name).close_video()
