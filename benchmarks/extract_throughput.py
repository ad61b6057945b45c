"""Extraction throughput: seconds of `muse extract` per minute of audio, stage by stage.

Builds a review-like recording from the committed espeak-ng clip (tests/data/speech.flac: 1 s
of faint noise, 3.2 s of speech, 1 s of noise) repeated to `--minutes`, with a word-timed
transcript and a tiny 300-d fastText model, then times each stage on it (decode, VAD,
eGeMAPS with one process and with `--workers`, LLD, fastText, the whole extraction with its
writing) and the end-to-end `extract_package`, and prints seconds per audio minute. The
reference is the audio itself: a ratio of 1 would be real time. Run:

    python benchmarks/extract_throughput.py --minutes 3 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import fasttext
import numpy as np
import pandas as pd
import soundfile

from muse.package.extract import extract_package
from muse.package.extract.acoustic import egemaps_steps, lld_frames, worker_pool
from muse.package.extract.decode import decode_audio
from muse.package.extract.text import FastTextModel, step_vectors, step_words
from muse.package.extract.transcripts import read_transcript
from muse.package.extract.vad import speech_segments

CLIP = Path(__file__).resolve().parents[1] / "tests" / "data" / "speech.flac"
CLIP_WORDS = [(0, 150, "The"), (150, 350, "new"), (350, 700, "car"), (700, 1100, "handles"),
              (1100, 1450, "well,"), (1750, 1950, "and"), (1950, 2050, "the"),
              (2050, 2400, "seats"), (2400, 2550, "are"), (2550, 3200, "comfortable.")]
CLIP_SPEECH_MS = 1000


def build_inputs(folder: Path, minutes: float) -> tuple[Path, Path, Path]:
    """The long recording (flac), its transcript folder and a fastText model."""
    clip, rate = soundfile.read(CLIP, dtype="int16")
    repeats = max(1, int(np.ceil(minutes * 60 * rate / len(clip))))
    media = folder / "review.flac"
    soundfile.write(media, np.tile(clip, repeats), rate, subtype="PCM_16")
    clip_ms = len(clip) * 1000 // rate
    rows = [(k * clip_ms + CLIP_SPEECH_MS + s, k * clip_ms + CLIP_SPEECH_MS + e, w)
            for k in range(repeats) for s, e, w in CLIP_WORDS]
    transcripts = folder / "transcripts"
    transcripts.mkdir()
    pd.DataFrame(rows, columns=["start", "end", "word"]).to_csv(transcripts / "review.csv",
                                                                index=False)
    corpus = folder / "corpus.txt"
    corpus.write_text(" ".join(w for _, _, w in CLIP_WORDS) + "\n" * 3)
    model = fasttext.train_unsupervised(str(corpus), dim=300, minCount=1, epoch=1, thread=1,
                                        minn=2, maxn=3, bucket=2000, verbose=0)
    model.save_model(str(folder / "model.bin"))
    return media, transcripts, folder / "model.bin"


class Stages:
    """Wall-clock and this process's CPU seconds per stage (the CPU time is what the stage
    takes on a core of its own, whatever else shares the machine)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def run(self, name: str, function, *args, **kwargs):
        start, cpu = time.perf_counter(), time.process_time()
        result = function(*args, **kwargs)
        self.wall[name] = time.perf_counter() - start
        self.cpu[name] = time.process_time() - cpu
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    stages = Stages()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        media, transcripts, model_path = build_inputs(folder, args.minutes)
        samples = stages.run("decode", decode_audio, media)
        segments = stages.run("vad", speech_segments, samples)
        steps = np.concatenate([s.steps() for s in segments])
        stages.run("egemaps, 1 process", egemaps_steps, samples, steps)
        with worker_pool(args.workers) as pool:  # timed with the processes' start
            stages.run(f"egemaps, {args.workers} processes", egemaps_steps, samples, steps,
                       pool, args.workers)
        stages.run("lld", lld_frames, samples)
        words = read_transcript(transcripts / "review.csv")
        model = FastTextModel(model_path)
        stages.run("fasttext", lambda: step_vectors(model.vectors(words.word),
                                                    step_words(words, steps)))
        for workers in sorted({1, args.workers}):
            stages.run(f"extract_package, {workers} process(es)", extract_package, [media],
                       folder / f"package{workers}", transcripts=transcripts,
                       fasttext_model=model_path, features=["egemaps", "lld", "fasttext"],
                       workers=workers)
    minutes = len(samples) / 16000 / 60
    print(json.dumps({
        "audio_minutes": round(minutes, 2), "label_steps": len(steps),
        "speech_fraction": round(len(steps) * 0.25 / (minutes * 60), 2),
        "wall_seconds_per_audio_minute": {k: round(v / minutes, 2)
                                          for k, v in stages.wall.items()},
        "cpu_seconds_per_audio_minute_in_this_process": {k: round(v / minutes, 2)
                                                         for k, v in stages.cpu.items()},
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cores": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
