"""Round trip: synthetic package -> `muse prepare` -> HDF5 store, checked against the CSV files."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from muse.package.layout import PARTITION_FILE, feature_dir, label_dir, transcript_file
from muse.tasks import TASKS


def video_rows(store: h5py.File, table: str, index: int) -> slice:
    offsets = store[f"{table}/video_offsets"]
    return slice(int(offsets[index]), int(offsets[index + 1]))


def csv_values(path: Path, dim: int) -> np.ndarray:
    return pd.read_csv(path)[[str(i) for i in range(dim)]].fillna(0).to_numpy(np.float32)


@pytest.mark.parametrize("task", ["wild", "trust"])
def test_continuous_store_matches_the_csvs(demo_package: Path, demo_stores: dict[str, Path],
                                           task: str) -> None:
    partition = pd.read_csv(demo_package / PARTITION_FILE).drop_duplicates("Id")
    with h5py.File(demo_stores[task], "r") as store:
        assert store.attrs["schema_version"] == 1 and store.attrs["complete"]
        ids = store["videos/id"][:]
        assert sorted(ids) == sorted(partition["Id"])
        parts = dict(zip(partition["Id"], partition["Proposal"], strict=True))
        assert [p.decode() for p in store["videos/partition"][:]] == [parts[i] for i in ids]
        for index, video in enumerate(ids):
            rows = video_rows(store, "label_aligned", index)
            for target in TASKS[task].targets:
                labels = pd.read_csv(label_dir(demo_package, task, target) / f"{video}.csv")
                np.testing.assert_array_equal(store["label_aligned/timestamp"][rows],
                                              labels["timestamp"])
                np.testing.assert_array_equal(store["label_aligned/segment_id"][rows],
                                              labels["segment_id"])
                np.testing.assert_allclose(store[f"label_aligned/labels/{target}"][rows],
                                           labels["value"].to_numpy(np.float32))
            for feature, dim in (("egemaps", 88), ("vggface", 512), ("fasttext", 300)):
                path = feature_dir(demo_package, task, "label_aligned") / feature / f"{video}.csv"
                np.testing.assert_array_equal(store[f"label_aligned/features/{feature}"][rows],
                                              csv_values(path, dim))
            lld = feature_dir(demo_package, task, "unaligned") / "lld" / f"{video}.csv"
            lld_rows = video_rows(store, "unaligned/lld", index)
            np.testing.assert_array_equal(store["unaligned/lld/timestamp"][lld_rows],
                                          pd.read_csv(lld)["timestamp"])
            audio = video_rows(store, "audio", index)
            end_ms = int(store["label_aligned/timestamp"][rows][-1]) + 250
            assert audio.stop - audio.start == end_ms * 8
        assert store["audio/samples"].dtype == np.int16 and store.attrs["audio_rate"] == 8000
        assert sum(json.loads(store.attrs["nan_cells"]).values()) >= 0


def test_topic_store_matches_the_csvs(demo_package: Path, demo_stores: dict[str, Path]) -> None:
    with h5py.File(demo_stores["topic"], "r") as store:
        ids = store["videos/id"][:]
        segment_offsets = store["egemaps_aligned/segment_offsets"][:]
        word_offsets = store["fasttext_aligned/segment_offsets"][:]
        assert len(segment_offsets) == len(word_offsets) == len(store["segments/segment_id"]) + 1
        for index, video in enumerate(ids):
            rows = video_rows(store, "segments", index)
            segments = store["segments/segment_id"][rows]
            topic = pd.read_csv(label_dir(demo_package, "topic", "topic") / f"{video}.csv")
            arousal = pd.read_csv(label_dir(demo_package, "topic", "arousal") / f"{video}.csv")
            np.testing.assert_array_equal(segments, topic["segment_id"])
            np.testing.assert_array_equal(store["segments/labels/topic"][rows], topic["class_id"])
            np.testing.assert_array_equal(store["segments/labels/arousal"][rows],
                                          arousal["class_id"])
            np.testing.assert_allclose(store["segments/labels/arousal_mean"][rows],
                                       arousal["mean"].to_numpy(np.float32))
            egemaps = pd.read_csv(
                feature_dir(demo_package, "topic", "egemaps_aligned") / "egemaps" / f"{video}.csv")
            for position, segment in zip(range(rows.start, rows.stop), segments, strict=True):
                steps = slice(segment_offsets[position], segment_offsets[position + 1])
                expected = egemaps[egemaps["segment_id"] == segment]
                np.testing.assert_array_equal(store["egemaps_aligned/timestamp"][steps],
                                              expected["timestamp"])
                np.testing.assert_array_equal(
                    store["egemaps_aligned/features/egemaps"][steps],
                    expected[[str(i) for i in range(88)]].fillna(0).to_numpy(np.float32))
                assert store["segments/start"][position] == expected["timestamp"].min()
                words = pd.read_csv(transcript_file(demo_package, "topic", video, int(segment)))
                assert store["segments/text"][position].decode() == " ".join(words["word"])


@pytest.mark.parametrize("task", ["wild", "topic", "trust"])
def test_gold_predictions_through_the_datamodule_score_perfectly(
        demo_package: Path, demo_stores: dict[str, Path], task: str) -> None:
    """Store -> datamodule -> predictions_frame -> official scorer: every key, perfect scores."""
    from muse.data.datamodule import MuseDataModule
    from muse.package.layout import aggregated_file
    from muse.scoring import score_frames

    features = "egemaps,fasttext" if task != "topic" else "egemaps,vggface"
    module = MuseDataModule(demo_stores[task], task, features, batch_size=4)
    module.setup()
    batches = list(module.val_dataloader())
    gold = [batch["labels"] for batch in batches]
    frame = module.predictions_frame(batches, gold)
    labels = pd.read_csv(aggregated_file(demo_package, task, "devel"))
    assert len(frame) == len(labels)
    result = score_frames(task, labels, frame)
    if task == "topic":
        assert result["topic_score"] == result["emotion_score"] == 100.0
    else:
        n = len(labels)
        assert result["score"] == pytest.approx((n - 1) / n, abs=1e-4)
    first = batches[0]
    assert first["features"].shape[-1] == module.feature_dim == (88 + 300 if task != "topic"
                                                                  else 88 + 512)
