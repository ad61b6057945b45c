"""Transcripts for `muse extract`: the package's CSV, SRT and WebVTT subtitles parse into
words with millisecond times, and malformed ones are named errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from muse.package.extract import ExtractError
from muse.package.extract.transcripts import find_transcript, read_transcript

SRT = """1
00:00:01,000 --> 00:00:02,000
<i>The new</i> car

2
00:00:02,500 --> 00:00:03,500
handles well.
"""

VTT = """WEBVTT
Kind: captions
Language: en

NOTE made by hand

intro
00:00:01.000 --> 00:00:02.000 align:start position:0%
The<00:00:01.300><c> new</c> car

00:02.500 --> 00:03.500
handles well.
"""


@pytest.mark.parametrize(("suffix", "text"), [(".srt", SRT), (".vtt", VTT)])
def test_subtitles_parse_into_timed_words(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"review{suffix}"
    path.write_text(text, encoding="utf-8")
    words = read_transcript(path)
    assert words.word == ["The", "new", "car", "handles", "well."]
    # a cue's time is shared by characters: "The new car" = 3 + 3 + 3 characters over 1 s,
    # "handles well." = 7 + 5
    np.testing.assert_array_equal(words.start, [1000, 1333, 1667, 2500, 3083])
    np.testing.assert_array_equal(words.end, [1333, 1667, 2000, 3083, 3500])
    assert find_transcript(tmp_path, "review") == path


def test_crlf_srt_and_hours(tmp_path: Path) -> None:
    path = tmp_path / "long.srt"
    path.write_bytes(b"7\r\n01:02:03,500 --> 01:02:04,500\r\nfast\r\n")
    words = read_transcript(path)
    assert (words.word, words.start.tolist(), words.end.tolist()) == (
        ["fast"], [3723500], [3724500])


def test_package_csv_keeps_quoted_words_and_sorts(tmp_path: Path) -> None:
    path = tmp_path / "review.csv"
    path.write_text('start,end,word,confidence\n1200,1500,"well,",0.9\n1000,1200,car,0.8\n')
    words = read_transcript(path)
    assert words.word == ["car", "well,"]
    assert words.start.tolist() == [1000, 1200]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.csv", "begin,stop,word\n1,2,x\n", r"missing column\(s\) \['start', 'end'\]"),
    ("b.csv", "start,end,word\n1,x,car\n", "line 2, column 'end' is not a number"),
    ("c.csv", "start,end,word\n100,50,car\n", "line 2: the word ends before it starts"),
    ("d.srt", "1\n00:00:01,000 --> soon\nword\n", "cue 1: unreadable time line"),
    ("e.vtt", "WEBVTT\n\n00:02.000 --> 00:01.000\nword\n", "cue 2 ends before it starts"),
    ("f.txt", "words", "unknown transcript format"),
])
def test_malformed_transcripts_are_named_errors(tmp_path: Path, name: str, text: str,
                                                message: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ExtractError, match=message) as caught:
        read_transcript(path)
    assert name in str(caught.value)


def test_two_transcripts_for_one_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "review.srt").write_text(SRT)
    (tmp_path / "review.vtt").write_text(VTT)
    with pytest.raises(ExtractError, match="more than one transcript for review"):
        find_transcript(tmp_path, "review")
