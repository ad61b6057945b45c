"""Everything extracted from one media file, on the video's own time line, before writing."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from muse.package.extract.acoustic import egemaps_steps, lld_frames
from muse.package.extract.decode import SAMPLE_RATE, decode_audio
from muse.package.extract.errors import ExtractError
from muse.package.extract.text import FastTextModel, step_vectors, step_words
from muse.package.extract.transcripts import Words
from muse.package.extract.vad import Segment, speech_segments


@dataclass
class ExtractedVideo:
    """One video: its audio, speech segments, label steps and the features asked for."""

    video_id: int
    source: Path
    samples: np.ndarray  # int16, 16 kHz mono, peak at -3 dBFS
    segments: list[Segment]
    timestamp: np.ndarray  # the label steps (ms), inside the segments only
    segment_id: np.ndarray  # per step
    words: Words | None = None  # the transcript's words that fall in a segment
    word_segment: np.ndarray | None = None  # per word
    egemaps: np.ndarray | None = None  # (steps, 88)
    lld_time: np.ndarray | None = None  # frame starts (ms) inside the segments
    lld_segment: np.ndarray | None = None
    lld: np.ndarray | None = None  # (frames, 130)
    word_vectors: np.ndarray | None = None  # (words, 300)
    step_text: np.ndarray | None = None  # (steps, 300), zeros where nobody speaks
    dropped_words: int = 0  # transcript words outside every speech segment

    @property
    def duration_ms(self) -> int:
        return len(self.samples) * 1000 // SAMPLE_RATE

    def segment_samples(self, segment: Segment) -> np.ndarray:
        rate = SAMPLE_RATE // 1000
        return self.samples[segment.start_ms * rate:segment.end_ms * rate]


def extract_video(video_id: int, source: Path, features: tuple[str, ...],
                  words: Words | None, fasttext: FastTextModel | None,
                  pool: Executor | None = None, workers: int = 1) -> ExtractedVideo:
    """Decode, segment and compute `features` (names among egemaps, lld, fasttext); the
    `workers` processes of `pool` share the eGeMAPS windows."""
    samples = decode_audio(source)
    segments = speech_segments(samples)
    if not segments:
        raise ExtractError(f"{source}: the voice activity detector found no speech")
    timestamp = np.concatenate([s.steps() for s in segments])
    segment_id = np.concatenate([np.full(len(s.steps()), s.segment_id, np.int64)
                                 for s in segments])
    video = ExtractedVideo(video_id, Path(source), samples, segments, timestamp, segment_id)
    if words is not None:
        _place_words(video, words)
    if "egemaps" in features:
        video.egemaps = egemaps_steps(samples, timestamp, pool, workers)
    if "lld" in features:
        times, values = lld_frames(samples)
        frame_segment = _segment_of(segments, times)
        inside = frame_segment > 0
        video.lld_time, video.lld_segment, video.lld = (times[inside], frame_segment[inside],
                                                        values[inside])
    if "fasttext" in features:
        if fasttext is None or video.words is None:
            raise ExtractError(f"{source}: fasttext needs a transcript and a fastText model")
        if not len(video.words):  # the word-level files would have no rows
            raise ExtractError(f"{source}: none of the transcript's {video.dropped_words} "
                               "word(s) falls in a speech segment; check its times (ms)")
        video.word_vectors = fasttext.vectors(video.words.word)
        video.step_text = step_vectors(video.word_vectors, step_words(video.words, timestamp))
    return video


def _place_words(video: ExtractedVideo, words: Words) -> None:
    """Give each word the segment it overlaps most (a zero-length word the segment holding
    it); words in no segment are dropped and counted."""
    spans = np.array([[s.start_ms, s.end_ms] for s in video.segments], np.int64)
    overlap = (np.minimum(words.end[:, None], spans[None, :, 1])
               - np.maximum(words.start[:, None], spans[None, :, 0]))
    best = np.argmax(overlap, axis=1)
    longest = overlap[np.arange(len(best)), best]
    # Segment ids run 1..K in time order, so the column index + 1 is the id.
    segment = np.where(longest > 0, best + 1, _segment_of(video.segments, words.start))
    kept = np.flatnonzero(segment > 0)
    video.words = Words(words.start[kept], words.end[kept], [words.word[i] for i in kept])
    video.word_segment = segment[kept].astype(np.int64)
    video.dropped_words = len(words) - len(kept)


def _segment_of(segments: list[Segment], times_ms: np.ndarray) -> np.ndarray:
    """The id of the segment holding each time, 0 where none does."""
    result = np.zeros(len(times_ms), np.int64)
    for segment in segments:
        result[(times_ms >= segment.start_ms) & (times_ms < segment.end_ms)] = segment.segment_id
    return result

