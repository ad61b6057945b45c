"""`synthesize`: plan the package, then write it video by video into a staging folder that is
renamed into place at the end, so an interrupted run never leaves a half package at `out`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from muse.package.layout import PARTITION_FILE, TOPIC_MAPPING_FILE, TOPIC_NAMES
from muse.package.staging import staged_folder
from muse.package.synthetic.labels import LabelBook
from muse.package.synthetic.plan import SynthesisError, VideoPlan, plan_package, resolve
from muse.package.synthetic.signals import simulate
from muse.package.synthetic.text import transcribe
from muse.package.synthetic.video import write_video
from muse.package.synthetic.writer import PackageWriter


def synthesize(out: str | os.PathLike, videos: int | None = None, minutes: float | None = None,
               seed: int = 0, features: list[str] | None = None, scale: str = "demo") -> Path:
    """Write a synthetic MuSe-CaR package to the new or empty folder `out` and return its path.

    `scale` ("demo" or "full") sets the number of videos, their mean length in minutes and the
    feature sets; `videos`, `minutes` and `features` override it. The same arguments give
    byte-identical files. Raises `SynthesisError` (a `ValueError`) for unknown feature sets,
    fewer than three videos, or an `out` that exists and is not empty.
    """
    videos, minutes, chosen = resolve(scale, videos, minutes, features, seed)
    out = Path(out)
    with staged_folder(out, SynthesisError) as staging:
        plans = plan_package(videos, minutes, seed)
        _write_package(PackageWriter(staging), plans, chosen, seed)
    return out


def _write_package(writer: PackageWriter, plans: list[VideoPlan], features: tuple[str, ...],
                   seed: int) -> None:
    writer.write_frame(writer.root / PARTITION_FILE, pd.DataFrame(
        {"Id": [p.video_id for p in plans], "Proposal": [p.partition for p in plans]}))
    writer.write_frame(writer.root / TOPIC_MAPPING_FILE, pd.DataFrame(
        {"class_id": range(len(TOPIC_NAMES)), "class_name": TOPIC_NAMES}))
    labels = LabelBook(writer, seed)
    for video in tqdm(plans, desc="muse synth", unit="video", disable=None):
        writer.start_video()
        signals = simulate(video, seed)
        transcript = transcribe(video, signals, seed)
        labels.add_video(video, signals)
        write_video(writer, video, signals, transcript, features, seed)
    labels.finish()
