"""Where each predicted row lies in its video, read from the prepared store: the segment of
every label step (MuSe-Wild, MuSe-Trust) and the start and end of every segment (MuSe-Topic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from muse.store.reader import Store
from muse.tasks import TASKS

STEP_TABLE = "label_aligned"


def row_times(store_path: Path) -> pd.DataFrame:
    """Continuous tasks: `id, timestamp, segment_id` per step; topic: `id, segment_id, start,
    end` (ms) per segment."""
    store = Store(store_path)
    try:
        if TASKS[store.task].continuous:
            offsets = store.read(f"{STEP_TABLE}/video_offsets")
            frame = pd.DataFrame({
                "id": np.repeat(store.video_ids, np.diff(offsets)),
                "timestamp": store.read(f"{STEP_TABLE}/timestamp").astype(np.int64),
                "segment_id": store.read(f"{STEP_TABLE}/segment_id").astype(np.int64)})
        else:
            frame = pd.DataFrame({
                "id": store.video_ids[store.segment_videos()],
                "segment_id": store.read("segments/segment_id").astype(np.int64),
                "start": store.read("segments/start").astype(np.int64),
                "end": store.read("segments/end").astype(np.int64)})
    finally:
        store.close()
    return frame
