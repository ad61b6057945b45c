"""Writes extracted videos into the official package layout, as `muse prepare` reads it.

Per video and sub-challenge (docs/package-layout.md): the step feature sets in the aligned
step folder (`label_aligned` for MuSe-Wild and MuSe-Trust, `egemaps_aligned` for MuSe-Topic)
and in `unaligned` at their native 250 ms rate, LLD in `unaligned` only (10 ms frames),
fastText per word in `unaligned` and `fasttext_aligned` (where the step sets are averaged over
the steps each word overlaps), one wav and one transcript per segment, and label files: empty
label folders (every video a test video with masked labels) or, with `--labels`, the
continuous targets' curves and the aggregated tables of MuSe-Wild and MuSe-Trust. Repeated
files (the same rows in several sub-challenges) are hard links, through the synthetic
generator's `PackageWriter`.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.io import wavfile

from muse.package.extract.decode import SAMPLE_RATE
from muse.package.extract.labels import VideoLabels
from muse.package.extract.video import ExtractedVideo
from muse.package.layout import (
    PARTITION_FILE,
    STEP_COLUMNS,
    STEP_MS,
    TOPIC_MAPPING_FILE,
    TOPIC_NAMES,
    WORD_LEVEL_COLUMNS,
    aggregated_file,
    audio_file,
    feature_dir,
    label_dir,
    transcript_file,
)
from muse.package.synthetic.writer import PackageWriter
from muse.tasks import TASKS

MEDIA_FILE = Path("metadata") / "media.csv"  # Id -> the media file it was extracted from
STEP_ALIGNED = {"wild": "label_aligned", "trust": "label_aligned", "topic": "egemaps_aligned"}
WORD_ALIGNED = "fasttext_aligned"
FLOAT_FORMAT = "%.7g"  # float32 holds about 7 significant digits


def table_bytes(keys: dict[str, np.ndarray], values: np.ndarray) -> bytes:
    """A feature CSV: integer key columns, then the values in columns `0 .. D-1`."""
    frame = pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1])])
    for position, (name, column) in enumerate(keys.items()):
        frame.insert(position, name, np.asarray(column, np.int64))
    return frame.to_csv(index=False, float_format=FLOAT_FORMAT).encode()


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    wavfile.write(buffer, SAMPLE_RATE, samples)
    return buffer.getvalue()


class ExtractedPackage:
    """Collects videos into a package folder; `finish` writes the tables over all videos."""

    def __init__(self, root: Path) -> None:
        self.writer = PackageWriter(root)
        self.root = Path(root)
        self._partition: dict[int, str] = {}
        self._media: list[dict] = []
        self._aggregated: dict[tuple[str, str], list[pd.DataFrame]] = defaultdict(list)

    def add(self, video: ExtractedVideo, labels: VideoLabels | None, display_name: str) -> None:
        self.writer.start_video()
        self._partition[video.video_id] = labels.partition if labels else "test"
        self._media.append({"Id": video.video_id, "file": display_name,
                            "duration_ms": video.duration_ms, "segments": len(video.segments),
                            "words": len(video.words) if video.words is not None else 0})
        tables, files = self._tables(video), self._segment_files(video)
        for task in TASKS:
            self._features(task, video.video_id, tables)
            self._segments(task, video.video_id, files)
            if labels is not None:
                self._labels(task, video, labels)

    def finish(self) -> None:
        ids = sorted(self._partition)
        self.writer.write_frame(self.root / PARTITION_FILE, pd.DataFrame(
            {"Id": ids, "Proposal": [self._partition[i] for i in ids]}))
        self.writer.write_frame(self.root / TOPIC_MAPPING_FILE, pd.DataFrame(
            {"class_id": range(len(TOPIC_NAMES)), "class_name": TOPIC_NAMES}))
        self.writer.write_frame(self.root / MEDIA_FILE, pd.DataFrame(self._media))
        for task, spec in TASKS.items():
            for target in spec.targets:  # prepare looks for the folders, empty or not
                label_dir(self.root, task, target).mkdir(parents=True, exist_ok=True)
        for (task, partition), tables in self._aggregated.items():
            self.writer.write_frame(aggregated_file(self.root, task, partition),
                                    pd.concat(tables, ignore_index=True))

    def _path(self, task: str, alignment: str, feature: str, video_id: int) -> Path:
        return feature_dir(self.root, task, alignment) / feature / f"{video_id}.csv"

    def _tables(self, video: ExtractedVideo) -> dict[tuple[str, str], bytes]:
        """Each feature table of the video, formatted once, by (rows, feature set): rows are
        "steps" (label steps), "unaligned" (native rate) or "words" (one per word)."""
        steps = dict(zip(STEP_COLUMNS, (video.timestamp, video.segment_id), strict=True))
        step_sets = {name: values for name, values in
                     (("egemaps", video.egemaps), ("fasttext", video.step_text))
                     if values is not None}
        tables = {}
        for name, values in step_sets.items():
            tables["steps", name] = table_bytes(steps, values)
            if name != "fasttext":  # unaligned fastText is per word
                tables["unaligned", name] = tables["steps", name]
        if video.lld is not None:
            frames = dict(zip(STEP_COLUMNS, (video.lld_time, video.lld_segment), strict=True))
            tables["unaligned", "lld"] = table_bytes(frames, video.lld)
        if video.word_vectors is not None:
            assert video.words is not None and video.word_segment is not None
            words = dict(zip(WORD_LEVEL_COLUMNS, (video.words.start, video.words.end,
                                                  video.word_segment), strict=True))
            tables["unaligned", "fasttext"] = tables["words", "fasttext"] = table_bytes(
                words, video.word_vectors)
            mean = word_step_means(video)
            for name, values in step_sets.items():
                if name != "fasttext":
                    tables["words", name] = table_bytes(words, np.asarray(mean @ values))
        return tables

    def _features(self, task: str, video_id: int, tables: dict[tuple[str, str], bytes]) -> None:
        folders = {"steps": STEP_ALIGNED[task], "unaligned": "unaligned", "words": WORD_ALIGNED}
        for (rows, name), data in tables.items():
            if rows == "words" and WORD_ALIGNED not in TASKS[task].aligned:
                continue
            self.writer.write_bytes(self._path(task, folders[rows], name, video_id), data)

    def _segment_files(self, video: ExtractedVideo) -> dict[int, tuple[bytes, bytes | None]]:
        """Per segment, its wav and (with a transcript) its transcript CSV."""
        files = {}
        for segment in video.segments:
            text = None
            if video.words is not None:
                assert video.word_segment is not None
                chosen = np.flatnonzero(video.word_segment == segment.segment_id)
                text = pd.DataFrame({"start": video.words.start[chosen],
                                     "end": video.words.end[chosen],
                                     "word": [video.words.word[i] for i in chosen]}
                                    ).to_csv(index=False).encode()
            files[segment.segment_id] = (wav_bytes(video.segment_samples(segment)), text)
        return files

    def _segments(self, task: str, video_id: int,
                  files: dict[int, tuple[bytes, bytes | None]]) -> None:
        for segment_id, (wav, text) in files.items():
            self.writer.write_bytes(audio_file(self.root, task, video_id, segment_id), wav)
            if text is not None:
                self.writer.write_bytes(transcript_file(self.root, task, video_id, segment_id),
                                        text)

    def _labels(self, task: str, video: ExtractedVideo, labels: VideoLabels) -> None:
        spec = TASKS[task]
        if not spec.continuous:
            return  # MuSe-Topic's per-segment classes are not built from curves
        values = {target: labels.at(target, video.timestamp) for target in spec.targets}
        for target, value in values.items():
            self.writer.write_frame(
                label_dir(self.root, task, target) / f"{video.video_id}.csv",
                pd.DataFrame({"timestamp": video.timestamp, "value": value,
                              "segment_id": video.segment_id}))
        table = pd.DataFrame({"id": video.video_id, "timestamp": video.timestamp})
        for target, column in zip(spec.scored, spec.label_columns(), strict=True):
            table[column] = values[target]
        self._aggregated[task, labels.partition].append(table)


def word_step_means(video: ExtractedVideo) -> sparse.csr_matrix:
    """(words, steps), sparse: averages the steps of its segment each word overlaps (a word
    between steps gets zeros)."""
    assert video.words is not None and video.word_segment is not None
    rows, columns, weights = [], [], []
    for i, (start, end, segment) in enumerate(zip(video.words.start.tolist(),
                                                  video.words.end.tolist(),
                                                  video.word_segment.tolist(), strict=True)):
        overlaps = np.flatnonzero(
            (video.timestamp < max(end, start + 1)) & (video.timestamp + STEP_MS > start)
            & (video.segment_id == segment))
        rows += [i] * len(overlaps)
        columns += overlaps.tolist()
        weights += [1.0 / len(overlaps)] * len(overlaps)
    return sparse.csr_matrix((weights, (rows, columns)),
                             shape=(len(video.words), len(video.timestamp)), dtype=np.float32)
