"""The gold labels a fused run is scored on, read from the members' store.

The rows are those a training run predicts and scores: every row of the label-aligned table
(MuSe-Wild, MuSe-Trust) or every segment (MuSe-Topic) of the partition's videos, masked labels
included (NaN, or -1 for classes; `muse.runs.evaluation` leaves them unscored and counts them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from muse.store.reader import Store
from muse.tasks import TASKS


def gold_frame(store_path: Path, task: str, partition: str) -> pd.DataFrame:
    """`id, <key>, label_<scored target>...` of one partition, sorted by the key columns."""
    spec = TASKS[task]
    store = Store(store_path)
    try:
        table = "segments" if spec.per_segment else "label_aligned"
        key = "segment_id" if spec.per_segment else "timestamp"
        offsets = store.read(f"{table}/video_offsets")
        videos = np.repeat(store.video_ids, np.diff(offsets))
        rows = np.isin(videos, store.video_ids[store.videos(partition)])
        frame = {"id": videos[rows], key: store.read(f"{table}/{key}")[rows].astype(np.int64)}
        for target in spec.scored:
            frame[f"label_{target}"] = store.read(f"{table}/labels/{target}")[rows]
    finally:
        store.close()
    return pd.DataFrame(frame).sort_values(list(spec.key)).reset_index(drop=True)
