"""All feature, transcript and audio files of one video, in the three sub-challenges.

A feature set's rows are generated and formatted once per video; each sub-challenge and
alignment then takes its rows: every step (MuSe-Trust) or the steps outside adverts (MuSe-Wild,
MuSe-Topic); only face-visible steps in `unaligned` face sets; one row per word in word-level
files, where the other sets are averaged over the steps the word overlaps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from muse.package.layout import (
    FEATURE_SETS,
    STEP_COLUMNS,
    STEP_MS,
    WORD_LEVEL_COLUMNS,
    audio_file,
    feature_dir,
    transcript_file,
)
from muse.package.synthetic.audio import segment_wav
from muse.package.synthetic.features import (
    FRAMES_PER_STEP,
    LLD_HOP_MS,
    lld_frames,
    shows_face,
    step_features,
)
from muse.package.synthetic.plan import KEEPS_ADVERTS, VideoPlan
from muse.package.synthetic.seeds import stream
from muse.package.synthetic.signals import VideoSignals
from muse.package.synthetic.text import Transcript
from muse.package.synthetic.writer import PackageWriter, header, table_lines
from muse.tasks import TASKS

STEP_ALIGNMENTS = ("label_aligned", "egemaps_aligned")  # one row per label step
WORD_ALIGNMENT = "fasttext_aligned"  # one row per word (MuSe-Topic)


@dataclass(frozen=True)
class _Rows:
    """Which rows of the video's step and word tables each sub-challenge keeps."""

    steps: dict[str, np.ndarray]
    words: dict[str, np.ndarray]
    step_keys: tuple[np.ndarray, np.ndarray]  # timestamp, segment_id
    word_keys: tuple[np.ndarray, np.ndarray, np.ndarray]  # start, end, segment_id
    word_mean: sparse.csr_matrix  # (words, steps): averages the steps a word overlaps

    @classmethod
    def of(cls, video: VideoPlan, transcript: Transcript) -> _Rows:
        first = transcript.start // STEP_MS  # the step each word starts in
        steps, words = {}, {}
        for task in TASKS:
            kept = video.step_mask(task)
            steps[task] = np.flatnonzero(kept)
            words[task] = np.flatnonzero(kept[first])
        count = -(-transcript.end // STEP_MS) - first  # steps overlapped: ceil(end) - floor(start)
        word = np.repeat(np.arange(count.size), count)
        within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        word_mean = sparse.csr_matrix(
            (1.0 / count[word], (word, first[word] + within)), shape=(count.size, video.n_steps))
        step_keys = (np.arange(video.n_steps) * STEP_MS, video.step_segment_ids())
        word_keys = (transcript.start, transcript.end, transcript.segment_id)
        return cls(steps, words, step_keys, word_keys, word_mean)


def write_video(writer: PackageWriter, video: VideoPlan, signals: VideoSignals,
                transcript: Transcript, features: tuple[str, ...], seed: int) -> None:
    rows = _Rows.of(video, transcript)
    _write_segments(writer, video, signals, transcript, seed)
    for name in features:
        if name == "lld":
            _write_lld(writer, video, signals, rows, seed)
            continue
        values = step_features(name, video, signals, transcript, seed)
        _write_steps(writer, video.video_id, name, values, rows, signals.face)
        _write_words(writer, video.video_id, name, values, rows, transcript)


def _path(writer: PackageWriter, task: str, alignment: str, name: str, video_id: int) -> Path:
    return feature_dir(writer.root, task, alignment) / name / f"{video_id}.csv"


def _write_steps(writer: PackageWriter, video_id: int, name: str, values: np.ndarray,
                 rows: _Rows, face: np.ndarray) -> None:
    lines = table_lines(rows.step_keys, values)
    head = header(STEP_COLUMNS, values.shape[1])
    word_level = FEATURE_SETS[name].modality == "text"
    for task, spec in TASKS.items():
        kept = rows.steps[task]
        for alignment in STEP_ALIGNMENTS:
            if alignment in spec.aligned:
                writer.write_lines(_path(writer, task, alignment, name, video_id), head, lines,
                                   kept)
        if not word_level:  # unaligned: the native 250 ms rate, only while a face is seen
            native = kept[face[kept]] if shows_face(name) else kept
            writer.write_lines(_path(writer, task, "unaligned", name, video_id), head, lines,
                               native)


def _write_words(writer: PackageWriter, video_id: int, name: str, values: np.ndarray,
                 rows: _Rows, transcript: Transcript) -> None:
    head = header(WORD_LEVEL_COLUMNS, values.shape[1])
    if FEATURE_SETS[name].modality == "text":
        # The word's own vector, unaligned in every sub-challenge and word-aligned in topic.
        lines = table_lines(rows.word_keys, transcript.vectors())
        for task, spec in TASKS.items():
            alignments = ["unaligned"] + [WORD_ALIGNMENT] * (WORD_ALIGNMENT in spec.aligned)
            for alignment in alignments:
                writer.write_lines(_path(writer, task, alignment, name, video_id), head, lines,
                                   rows.words[task])
        return
    for task, spec in TASKS.items():
        if WORD_ALIGNMENT in spec.aligned:
            kept = rows.words[task]
            keys = tuple(key[kept] for key in rows.word_keys)
            lines = table_lines(keys, rows.word_mean[kept] @ values)
            writer.write_lines(_path(writer, task, WORD_ALIGNMENT, name, video_id), head, lines,
                               np.arange(kept.size))


def _write_lld(writer: PackageWriter, video: VideoPlan, signals: VideoSignals, rows: _Rows,
               seed: int) -> None:
    """lld exists only unaligned, at its own 10 ms hop."""
    values = lld_frames(video, signals, seed)
    frame_step = np.arange(len(values)) // FRAMES_PER_STEP
    keys = (np.arange(len(values)) * LLD_HOP_MS, rows.step_keys[1][frame_step])
    lines = table_lines(keys, values)
    head = header(STEP_COLUMNS, values.shape[1])
    for task in TASKS:
        kept = np.flatnonzero(np.isin(frame_step, rows.steps[task]))
        writer.write_lines(_path(writer, task, "unaligned", "lld", video.video_id), head, lines,
                           kept)


def _write_segments(writer: PackageWriter, video: VideoPlan, signals: VideoSignals,
                    transcript: Transcript, seed: int) -> None:
    """Each segment's wav and transcript, in every sub-challenge that keeps the segment."""
    for segment in video.segments:
        spoken = np.flatnonzero(transcript.segment_id == segment.segment_id)
        start, end = transcript.start[spoken], transcript.end[spoken]
        wav = segment_wav(signals.clean["arousal"][segment.start:segment.stop],
                          segment.start * STEP_MS, start, end,
                          stream(seed, video.video_id, "audio", segment.segment_id))
        text = "start,end,word\n" + "".join(
            f"{s},{e},{transcript.words[i]}\n"
            for s, e, i in zip(start.tolist(), end.tolist(), spoken.tolist(), strict=True))
        for task in TASKS:
            if KEEPS_ADVERTS[task] or not segment.advert:
                writer.write_bytes(audio_file(writer.root, task, video.video_id,
                                              segment.segment_id), wav)
                writer.write_bytes(transcript_file(writer.root, task, video.video_id,
                                                   segment.segment_id), text.encode())
