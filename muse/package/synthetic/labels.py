"""Label files of the three sub-challenges, the aggregated tables and the ceilings.

Continuous labels (MuSe-Wild, MuSe-Trust) are written per video as it is generated. MuSe-Topic
classes arousal and valence by tertiles of the segment mean over the whole package, so its
segment rows (a few numbers per segment) are kept and written at the end, together with the
aggregated tables of every partition and `metadata/ceilings.json`.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pandas as pd

from muse.package.layout import CEILINGS_FILE, STEP_MS, TOPIC_NAMES, aggregated_file, label_dir
from muse.package.synthetic.ceilings import ccc, topic_score
from muse.package.synthetic.plan import VideoPlan
from muse.package.synthetic.seeds import stream
from muse.package.synthetic.signals import LABEL_DECIMALS, VideoSignals
from muse.package.synthetic.writer import PackageWriter
from muse.tasks import ALL_PARTITIONS, TASKS

TOPIC_FLIP_RATE = 0.03  # annotators give a segment another topic this often
CLASS_TARGETS = ("arousal", "valence")


class LabelBook:
    """Writes each video's labels and keeps what the package-level tables need."""

    def __init__(self, writer: PackageWriter, seed: int) -> None:
        self.writer, self.seed = writer, seed
        self._aggregated: dict[tuple[str, str], list[pd.DataFrame]] = defaultdict(list)
        # (task, partition, target) -> per-video (gold, noiseless) arrays
        self._pairs: dict[tuple[str, str, str], list[tuple[np.ndarray, np.ndarray]]] = (
            defaultdict(list))
        self._segments: list[dict] = []

    def add_video(self, video: VideoPlan, signals: VideoSignals) -> None:
        for task, spec in TASKS.items():
            if spec.continuous:
                self._continuous(task, video, signals)
        self._topic_segments(video, signals)

    def _continuous(self, task: str, video: VideoPlan, signals: VideoSignals) -> None:
        steps = np.flatnonzero(video.step_mask(task))
        keys = {"timestamp": steps * STEP_MS, "segment_id": video.step_segment_ids()[steps]}
        for target in TASKS[task].targets:
            gold = signals.gold[target][steps]
            frame = pd.DataFrame({"timestamp": keys["timestamp"], "value": gold,
                                  "segment_id": keys["segment_id"]})
            self.writer.write_frame(label_dir(self.writer.root, task, target)
                                    / f"{video.video_id}.csv", frame)
            self._pairs[task, video.partition, target].append(
                (gold, signals.clean[target][steps]))
        table = pd.DataFrame({"id": video.video_id, "timestamp": keys["timestamp"]})
        for target, column in zip(TASKS[task].scored, TASKS[task].label_columns(), strict=True):
            table[column] = signals.gold[target][steps]
        self._aggregated[task, video.partition].append(table)

    def _topic_segments(self, video: VideoPlan, signals: VideoSignals) -> None:
        rng = stream(self.seed, video.video_id, "topic annotation")
        for segment in video.segments_for("topic"):
            span = slice(segment.start, segment.stop)
            gold_topic = segment.topic
            if rng.random() < TOPIC_FLIP_RATE:
                others = [c for c in range(len(TOPIC_NAMES)) if c != segment.topic]
                gold_topic = int(rng.choice(others))
            row = {"id": video.video_id, "segment_id": segment.segment_id,
                   "partition": video.partition, "topic_class": gold_topic,
                   "clean_topic_class": segment.topic}
            for target in CLASS_TARGETS:
                row[f"{target}_mean"] = round(float(signals.gold[target][span].mean()),
                                              LABEL_DECIMALS)
                row[f"clean_{target}_mean"] = float(signals.clean[target][span].mean())
            self._segments.append(row)

    def finish(self) -> dict:
        """Write MuSe-Topic's labels, every aggregated table and the ceilings; return these."""
        self.writer.start_video()
        segments = pd.DataFrame(self._segments)
        for target in CLASS_TARGETS:
            # Tertiles of the gold segment mean; the noiseless class uses the same thresholds.
            thresholds = np.quantile(segments[f"{target}_mean"], [1 / 3, 2 / 3])
            for prefix in ("", "clean_"):
                segments[f"{prefix}{target}_class"] = np.digitize(
                    segments[f"{prefix}{target}_mean"], thresholds)
        self._write_topic_labels(segments)
        for task in TASKS:
            for partition in ALL_PARTITIONS:
                self.writer.write_frame(aggregated_file(self.writer.root, task, partition),
                                        self._aggregated_table(task, partition, segments))
        ceilings = self._ceilings(segments)
        self.writer.write_bytes(self.writer.root / CEILINGS_FILE,
                                (json.dumps(ceilings, indent=2) + "\n").encode())
        return ceilings

    def _write_topic_labels(self, segments: pd.DataFrame) -> None:
        for video_id, rows in segments.groupby("id", sort=True):
            for target in TASKS["topic"].targets:
                frame = pd.DataFrame({"id": rows["id"], "segment_id": rows["segment_id"],
                                      "class_id": rows[f"{target}_class"]})
                if target in CLASS_TARGETS:
                    frame["mean"] = rows[f"{target}_mean"]
                self.writer.write_frame(label_dir(self.writer.root, "topic", target)
                                        / f"{video_id}.csv", frame)

    def _aggregated_table(self, task: str, partition: str, segments: pd.DataFrame
                          ) -> pd.DataFrame:
        spec = TASKS[task]
        if spec.continuous:
            return pd.concat(self._aggregated[task, partition], ignore_index=True)
        rows = segments[segments["partition"] == partition]
        table = rows[["id", "segment_id"]].copy()
        for target, column in zip(spec.scored, spec.label_columns(), strict=True):
            table[column] = rows[f"{target}_class"]
        return table

    def _ceilings(self, segments: pd.DataFrame) -> dict:
        ceilings: dict[str, dict[str, dict[str, float]]] = {}
        for task, spec in TASKS.items():
            ceilings[task] = {}
            for partition in ALL_PARTITIONS:
                if spec.continuous:
                    ceilings[task][partition] = {
                        target: ccc(*map(np.concatenate, zip(*self._pairs[task, partition, target],
                                                             strict=True)))
                        for target in spec.targets
                    }
                else:
                    rows = segments[segments["partition"] == partition]
                    ceilings[task][partition] = {
                        target: topic_score(rows[f"{target}_class"].to_numpy(),
                                            rows[f"clean_{target}_class"].to_numpy())
                        for target in spec.targets
                    }
        return ceilings
