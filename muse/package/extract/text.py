"""fastText (300-d) word vectors of a transcript, per word and per 250 ms label step.

The user supplies the binary model (`cc.en.300.bin` is the Common Crawl model the paper used);
`fasttext-wheel` reads it. The package's rows follow the paper: word-level files hold one row
per word, and step files repeat a word's vector over the steps it is spoken in, zeros where
nobody speaks. A step takes the word that overlaps it longest (the earlier one on a tie).
Words are looked up with surrounding punctuation removed; fastText's subword n-grams give a
vector to any word, also one the model never saw.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import fasttext
import numpy as np

from muse.package.extract.errors import ExtractError
from muse.package.extract.transcripts import Words
from muse.package.layout import FEATURE_SETS, STEP_MS

DIM = FEATURE_SETS["fasttext"].dim
_PUNCTUATION = "\"'.,;:!?()[]{}…“”‘’-–—"


class FastTextModel:
    """A fastText binary model that gives 300-d vectors."""

    def __init__(self, path: Path) -> None:
        path = Path(path)
        if not path.is_file():
            raise ExtractError(f"{path}: fastText model not found")
        try:
            # fastText prints a notice about its API to stderr on every load.
            with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
                self._model = fasttext.load_model(str(path))
        except ValueError as err:
            raise ExtractError(f"{path}: not a fastText binary model ({err})") from None
        dim = self._model.get_dimension()
        if dim != DIM:
            raise ExtractError(f"{path}: the model gives {dim}-d vectors; the package's "
                               f"fasttext features are {DIM}-d (e.g. cc.en.300.bin)")

    def vectors(self, words: list[str]) -> np.ndarray:
        """(words, 300) float32, one row per word."""
        rows = np.zeros((len(words), DIM), np.float32)
        for i, word in enumerate(words):
            token = word.strip(_PUNCTUATION)
            if token:
                rows[i] = self._model.get_word_vector(token)
        return rows


def step_words(words: Words, steps_ms: np.ndarray) -> np.ndarray:
    """Per label step `[t, t + 250)`, the index of the word overlapping it longest, -1 if none."""
    best = np.full(len(steps_ms), -1, np.int64)
    longest = np.zeros(len(steps_ms), np.int64)
    for i, (start, end) in enumerate(zip(words.start.tolist(), words.end.tolist(), strict=True)):
        first = np.searchsorted(steps_ms, start - STEP_MS, side="right")
        stop = np.searchsorted(steps_ms, end, side="left")
        if stop <= first:
            continue
        steps = steps_ms[first:stop]
        overlap = np.minimum(steps + STEP_MS, end) - np.maximum(steps, start)
        better = overlap > longest[first:stop]
        best[first:stop][better] = i
        longest[first:stop][better] = overlap[better]
    return best


def step_vectors(word_vectors: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """(steps, 300): each step's word vector, zeros where no word is spoken."""
    rows = np.zeros((len(chosen), DIM), np.float32)
    spoken = chosen >= 0
    rows[spoken] = word_vectors[chosen[spoken]]
    return rows
