"""A tiny challenge package written by hand in the official layout, not by `muse synth`.

It has what real packages have and the generator does not write: CRLF line endings, a UTF-8
byte-order mark, both label column orders, a duplicated partition row, an empty NaN cell, a
segment nobody speaks in (header-only transcript), and folders that are simply absent (MuSe-Trust,
unaligned features, MuSe-Topic audio and fastText). Values lie in realistic ranges.

Videos 11 (train), 22 (devel), 33 (test); each has two segments of eight 250 ms steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import wavfile

VIDEOS = {11: "train", 22: "devel", 33: "test"}
SEGMENTS = (1, 2)
STEPS_PER_SEGMENT = 8
EGEMAPS_DIM = 88
SILENT_SEGMENT = (22, 2)  # its transcript has a header and no rows
NAN_CELL = (11, 3, "5")  # (video, data row, column) left empty in the wild egemaps file
BOM = "\ufeff"


def steps() -> tuple[list[int], list[int]]:
    """(timestamps in ms, segment ids) of every video's label steps."""
    timestamps, segments = [], []
    for index, segment in enumerate(SEGMENTS):
        for step in range(STEPS_PER_SEGMENT):
            timestamps.append((index * STEPS_PER_SEGMENT + step) * 250)
            segments.append(segment)
    return timestamps, segments


def write(path: Path, text: str, crlf: bool = False, bom: bool = False) -> Path:
    """Write a package file as text; `crlf`/`bom` as Windows tools write them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes(((BOM if bom else "") + text).encode("utf-8"))
    return path


def egemaps_row(rng: np.random.Generator) -> list[str]:
    """eGeMAPS-like values: loudness ~1, jitter ~0.01, F1-F3 formants ~500-3000 Hz."""
    scale = np.ones(EGEMAPS_DIM)
    scale[10:20] = 0.01
    scale[40:46] = 3000.0
    return [f"{v:.6g}" for v in rng.random(EGEMAPS_DIM) * scale]


def egemaps_file(video: int, rng: np.random.Generator) -> str:
    timestamps, segments = steps()
    lines = [",".join(["timestamp", "segment_id"] + [str(i) for i in range(EGEMAPS_DIM)])]
    for row, (t, s) in enumerate(zip(timestamps, segments, strict=True)):
        cells = egemaps_row(rng)
        if (video, row) == NAN_CELL[:2]:
            cells[int(NAN_CELL[2])] = ""
        lines.append(",".join([str(t), str(s)] + cells))
    return "\n".join(lines) + "\n"


def label_file(values: np.ndarray, order_2021: bool) -> str:
    timestamps, segments = steps()
    header = "timestamp,segment_id,value" if order_2021 else "timestamp,value,segment_id"
    lines = [header]
    for t, s, v in zip(timestamps, segments, values, strict=True):
        lines.append(f"{t},{s},{v:.4f}" if order_2021 else f"{t},{v:.4f},{s}")
    return "\n".join(lines) + "\n"


def write_package(root: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = "".join(f"{v},{p}\n" for v, p in VIDEOS.items()) + "22,devel\n"
    write(root / "metadata" / "partition.csv", "Id,Proposal\n" + rows, crlf=True, bom=True)

    wild = root / "c1_muse_wild"
    for video in VIDEOS:
        write(wild / "feature_segments" / "label_aligned" / "egemaps" / f"{video}.csv",
              egemaps_file(video, rng))
        for target, order_2021 in (("arousal", False), ("valence", True)):
            values = np.clip(rng.normal(0, 0.4, len(steps()[0])), -1, 1)
            write(wild / "label_segments" / target / f"{video}.csv",
                  label_file(values, order_2021), crlf=video == 22)
        for index, segment in enumerate(SEGMENTS):
            seconds = STEPS_PER_SEGMENT * 0.25
            signal = np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(16000 * seconds)))
            path = wild / "audio_segments" / str(video) / f"{video}_{segment}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            wavfile.write(path, 16000, (0.3 * (index + 1) * 32767 * signal).astype(np.int16))

    topic = root / "c2_muse_topic"
    for video in VIDEOS:
        write(topic / "feature_segments" / "egemaps_aligned" / "egemaps" / f"{video}.csv",
              egemaps_file(-1, rng))
        classes = rng.integers(0, 10, len(SEGMENTS))
        write(topic / "label_segments" / "topic" / f"{video}.csv",
              "id,segment_id,class_id\n" + "".join(
                  f"{video},{s},{c}\n" for s, c in zip(SEGMENTS, classes, strict=True)))
        for target in ("arousal", "valence"):
            means = rng.uniform(-0.5, 0.5, len(SEGMENTS))
            write(topic / "label_segments" / target / f"{video}.csv",
                  "id,segment_id,class_id,mean\n" + "".join(
                      f"{video},{s},{int((m + 0.5) * 3)},{m:.4f}\n"
                      for s, m in zip(SEGMENTS, means, strict=True)))
        for segment in SEGMENTS:
            path = topic / "transcription_segments" / str(video) / f"{video}_{segment}.csv"
            if (video, segment) == SILENT_SEGMENT:
                write(path, "start,end,word\n")
            else:
                base = (segment - 1) * STEPS_PER_SEGMENT * 250
                write(path, f"start,end,word\n{base},{base + 300},the\n"
                            f"{base + 300},{base + 700},\"car, really\"\n",
                      crlf=video == 11, bom=video == 11)
    return root
