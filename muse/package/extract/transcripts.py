"""Word timings from a transcript: the package's CSV, SRT or WebVTT subtitles.

* CSV: the package's transcription layout, columns `start, end, word` (milliseconds), read by
  name; further columns are ignored.
* SRT and WebVTT (what a YouTube review offers): each cue's text is split into words and the
  cue's time is shared among them in proportion to their length in characters, since subtitles
  time lines, not words. Markup (`<i>`, `<c>`, `{\\an8}`, inline `<00:00:01.500>` times) is
  removed; WebVTT `NOTE`, `STYLE` and `REGION` blocks are skipped.

A transcript of media `review.mp4` is `review.csv`, `review.srt` or `review.vtt` in the
transcript folder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import numpy as np
import pandas as pd

from muse.package.extract.errors import ExtractError

SUFFIXES = (".csv", ".srt", ".vtt")
_CUE_TIME = re.compile(
    r"^\s*(?P<start>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*"
    r"(?P<end>(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})")
_MARKUP = re.compile(r"<[^>]*>|\{\\[^}]*\}")


@dataclass(frozen=True)
class Words:
    """A transcript's words in time order, with their `[start, end)` in milliseconds."""

    start: np.ndarray  # int64
    end: np.ndarray  # int64
    word: list[str]

    def __len__(self) -> int:
        return len(self.word)


def find_transcript(folder: Path, stem: str) -> Path | None:
    """The transcript of the media file named `stem` in `folder`, if there is one."""
    found = [folder / f"{stem}{suffix}" for suffix in SUFFIXES
             if (folder / f"{stem}{suffix}").is_file()]
    if len(found) > 1:
        raise ExtractError(f"{folder}: more than one transcript for {stem}: "
                           f"{[p.name for p in found]}; keep one")
    return found[0] if found else None


def read_transcript(path: Path) -> Words:
    """The words of a CSV, SRT or WebVTT transcript; an unreadable one names the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ExtractError(f"{path}: unknown transcript format; use one of {list(SUFFIXES)}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ExtractError(f"{path}: unreadable transcript ({err})") from None
    words = _read_csv(path, text) if suffix == ".csv" else _read_cues(path, text)
    order = np.argsort(words.start, kind="stable")
    return Words(words.start[order], words.end[order], [words.word[i] for i in order])


def _read_csv(path: Path, text: str) -> Words:
    try:
        frame = pd.read_csv(StringIO(text), dtype={"word": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ExtractError(f"{path}: unreadable CSV ({err})") from None
    missing = [c for c in ("start", "end", "word") if c not in frame.columns]
    if missing:
        raise ExtractError(f"{path}: missing column(s) {missing}; a transcript CSV has "
                           "start,end,word (milliseconds)")
    times = {}
    for name in ("start", "end"):
        values = pd.to_numeric(frame[name], errors="coerce")
        if values.isna().any():
            line = int(np.argmax(values.isna().to_numpy())) + 2
            raise ExtractError(f"{path}: line {line}, column {name!r} is not a number")
        times[name] = values.round().to_numpy(np.int64)
    _check_order(path, times["start"], times["end"], lambda i: f"line {i + 2}")
    return Words(times["start"], times["end"], [w.strip() for w in frame["word"].astype(str)])


def _read_cues(path: Path, text: str) -> Words:
    starts, ends, words = [], [], []
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\r", "\n"))
    for number, block in enumerate(blocks, start=1):
        lines = block.strip().split("\n")
        timing = next((i for i, line in enumerate(lines) if "-->" in line), None)
        if timing is None:
            continue  # the WEBVTT header, NOTE / STYLE / REGION blocks, stray text
        match = _CUE_TIME.match(lines[timing])
        if match is None:
            raise ExtractError(f"{path}: cue {number}: unreadable time line {lines[timing]!r}")
        start, end = _millis(match["start"]), _millis(match["end"])
        if end < start:
            raise ExtractError(f"{path}: cue {number} ends before it starts")
        cue_words = _MARKUP.sub(" ", " ".join(lines[timing + 1:])).split()
        if not cue_words:
            continue
        # Each word gets a share of the cue proportional to its characters.
        lengths = np.array([len(w) for w in cue_words], np.float64)
        bounds = start + np.round(np.concatenate([[0], np.cumsum(lengths)]) / lengths.sum()
                                  * (end - start)).astype(np.int64)
        starts.extend(bounds[:-1].tolist())
        ends.extend(bounds[1:].tolist())
        words.extend(cue_words)
    return Words(np.asarray(starts, np.int64), np.asarray(ends, np.int64), words)


def _millis(stamp: str) -> int:
    parts = stamp.replace(",", ".").split(":")
    hours = int(parts[0]) if len(parts) == 3 else 0
    return int(round((float(parts[-1]) + 60 * int(parts[-2]) + 3600 * hours) * 1000))


def _check_order(path: Path, start: np.ndarray, end: np.ndarray, where) -> None:
    bad = np.flatnonzero(end < start)
    if bad.size:
        raise ExtractError(f"{path}: {where(int(bad[0]))}: the word ends before it starts")
