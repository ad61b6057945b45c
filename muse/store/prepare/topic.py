"""Preparing one video of MuSe-Topic: segments with labels and text, segment-aligned features."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from muse.package.layout import STEP_MS, transcript_file
from muse.package.reader import (
    FeatureTable,
    check_same_rows,
    feature_names,
    feature_path,
    read_feature,
    read_topic_labels,
    read_transcript,
)
from muse.store.prepare.audio import video_audio
from muse.store.prepare.continuous import write_unaligned
from muse.store.prepare.plan import PreparePlan
from muse.store.prepare.stats import PrepareStats
from muse.store.writer import StoreWriter

EMOTIONS = ("arousal", "valence")


@dataclass
class SegmentOffsets:
    """Per alignment, the global row offsets of every stored segment (length S + 1 at the end)."""

    offsets: dict[str, list[int]] = field(default_factory=dict)

    def extend(self, alignment: str, base: int, ends: np.ndarray) -> None:
        starts = self.offsets.setdefault(alignment, [0])
        starts.extend((base + ends).tolist())


def prepare_video(plan: PreparePlan, video: int, writer: StoreWriter, stats: PrepareStats,
                  audio_rate: int, offsets: SegmentOffsets) -> None:
    task = plan.task
    aligned = {a: _read_alignment(plan, a, video, stats) for a in task.aligned}
    steps = aligned["egemaps_aligned"] or _timing_only(plan, video)
    if video in plan.unlabelled:
        reference = steps or aligned["fasttext_aligned"]
        if reference is None:
            raise PrepareStats.no_rows_error(plan, video)
        segments = np.unique(reference[0].segment_id)
        classes = {t: np.full(len(segments), -1, np.int64) for t in task.targets}
        means: dict[str, np.ndarray] = {}
    else:
        labels = read_topic_labels(plan.package, task.name, task.targets, video)
        segments, classes, means = labels.segment_id, labels.classes, labels.means

    for alignment, read in aligned.items():
        if read is not None:  # e.g. LLD alone: MuSe-Topic has it unaligned only
            _write_rows(writer, alignment, segments, read, offsets)

    start, end = _segment_times(segments, steps)
    texts = np.array([read_transcript(transcript_file(plan.package, task.name, video, int(s)))
                      for s in segments], dtype=object)
    stats.empty_transcripts += int(sum(not text for text in texts))
    arrays = {"segment_id": segments, "start": start, "end": end, "text": texts}
    arrays.update({f"labels/{t}": classes[t] for t in task.targets})
    for emotion in EMOTIONS:
        arrays[f"labels/{emotion}_mean"] = means.get(
            emotion, np.full(len(segments), np.nan, np.float32)).astype(np.float32)
    writer.table("segments").append(len(segments), arrays)
    writer.table("segments").close_video()

    write_unaligned(plan, video, writer, stats)
    if audio_rate:
        known = start >= 0
        starts = {int(s): int(t) for s, t in zip(segments[known], start[known], strict=True)}
        signal, missing = video_audio(plan.package, task.name, video, starts,
                                      int(end.max(initial=0)), audio_rate)
        stats.missing_audio += missing
        writer.table("audio").append(len(signal), {"samples": signal})
        writer.table("audio").close_video()


def _read_alignment(plan: PreparePlan, alignment: str, video: int,
                    stats: PrepareStats) -> tuple[FeatureTable, dict[str, np.ndarray]] | None:
    """The shared rows (first feature) and every feature's values of one alignment."""
    features = plan.features.get(alignment, [])
    if not features:
        return None
    reference: FeatureTable | None = None
    values = {}
    for feature in features:
        table = read_feature(plan.package, plan.task.name, alignment, feature, video,
                             plan.dims[(alignment, feature)])
        stats.add_feature(plan, alignment, feature, table)
        if reference is None:
            reference = table
        else:
            path = feature_path(plan.package, plan.task.name, alignment, feature, video)
            keys = ("timestamp", "segment_id") if table.end is None else (
                "start", "end", "segment_id")
            check_same_rows(path, _keys(reference), _keys(table), keys,
                            reference_name=f"{alignment}/{features[0]}")
        values[feature] = table.values
    assert reference is not None
    return reference, values


def _keys(table: FeatureTable) -> tuple[np.ndarray, ...]:
    if table.end is None:
        return table.timestamp, table.segment_id
    return table.timestamp, table.end, table.segment_id


def _timing_only(plan: PreparePlan, video: int):
    """Segment timing from the package's first egemaps_aligned folder when none was selected."""
    names = feature_names(plan.package, plan.task.name, "egemaps_aligned")
    if not names:
        return None
    return read_feature(plan.package, plan.task.name, "egemaps_aligned", names[0], video,
                        None), {}


def _write_rows(writer: StoreWriter, alignment: str, segments: np.ndarray,
                read: tuple[FeatureTable, dict[str, np.ndarray]], offsets: SegmentOffsets) -> None:
    """Keep the rows of labelled segments, grouped by segment in segment order."""
    table, values = read
    order = np.argsort(table.segment_id, kind="stable")
    order = order[np.isin(table.segment_id[order], segments)]
    ordered_segments = table.segment_id[order]
    ends = np.searchsorted(ordered_segments, segments, side="right")
    rows = writer.table(alignment)
    offsets.extend(alignment, rows.rows, ends)
    arrays = {"timestamp": table.timestamp[order], "segment_id": ordered_segments}
    if table.end is not None:
        arrays["end"] = table.end[order]
    arrays.update({f"features/{name}": v[order] for name, v in values.items()})
    rows.append(len(order), arrays)
    rows.close_video()


def _segment_times(segments: np.ndarray, steps) -> tuple[np.ndarray, np.ndarray]:
    """First step and end of the last step (ms) per segment; -1 where no step is known."""
    start = np.full(len(segments), -1, np.int64)
    end = np.full(len(segments), -1, np.int64)
    if steps is None:
        return start, end
    table = steps[0]
    for i, segment in enumerate(segments):
        times = table.timestamp[table.segment_id == segment]
        if len(times):
            start[i], end[i] = times.min(), times.max() + STEP_MS
    return start, end
