"""MuseDataModule over hand-written stores: windows, coverage, values, normalisation, topic
segments, audio, streaming vs memory, workers and the store's refusals."""

from __future__ import annotations

import os
import pickle
import tracemalloc

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from store_factory import (
    AUDIO_RATE,
    CONTINUOUS_VIDEOS,
    write_continuous_store,
    write_topic_store,
)
from torch.utils.data import DataLoader

from muse.data.datamodule import MuseDataModule
from muse.data.datasets import collate_segments, collate_sequences, make_windows
from muse.data.normalization import Normalizer
from muse.errors import StoreError
from muse.runs.builders import class_weights
from muse.store import reader as store_module
from muse.store.chunked import ChunkedArray, map_file
from muse.store.reader import MemoryRows, Store


@pytest.fixture
def wild(tmp_path):
    return write_continuous_store(tmp_path / "wild.h5", "wild")


@pytest.fixture
def trust(tmp_path):
    return write_continuous_store(tmp_path / "trust.h5", "trust")


@pytest.fixture
def topic(tmp_path):
    return write_topic_store(tmp_path / "topic.h5")


def partition_rows(contents, partition: str) -> np.ndarray:
    """Row indices of the main table for the videos of one partition."""
    return np.concatenate([
        np.arange(contents.offsets[v], contents.offsets[v + 1])
        for v, p in enumerate(contents.partitions) if p == partition
    ])


def assert_same_batches(left: list[dict], right: list[dict]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if isinstance(a[key], torch.Tensor):
                torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, equal_nan=True)
            else:
                assert a[key] == b[key]


# -- windows ---------------------------------------------------------------------------------


def test_make_windows_starts_lengths_and_owners():
    offsets = np.array([0, 120, 170, 177])
    w = make_windows(offsets, np.array([0, 1, 2]), length=50, hop=50)
    assert w.start.tolist() == [0, 50, 100, 120, 170]
    assert w.length.tolist() == [50, 50, 20, 50, 7]
    assert w.video.tolist() == [0, 0, 0, 1, 2]
    overlapping = make_windows(offsets, np.array([0]), length=50, hop=25)
    assert overlapping.start.tolist() == [0, 25, 50, 75]
    assert overlapping.length.tolist() == [50, 50, 50, 45]
    whole = make_windows(offsets, np.array([2, 0]), length=None)
    assert whole.start.tolist() == [170, 0] and whole.length.tolist() == [7, 120]


def test_training_windows_are_padded_with_a_mask(wild):
    dm = MuseDataModule(wild.path, "wild", ["egemaps"], batch_size=100)
    (batch,) = list(dm.train_dataloader())
    # Train videos: 120 steps -> 50+50+20, 50 -> 50, 7 -> 7 (padded to the window).
    assert batch["features"].shape == (5, 50, 3)
    assert sorted(batch["mask"].sum(1).tolist()) == [7, 20, 50, 50, 50]
    pad = ~batch["mask"]
    assert (batch["features"][pad] == 0).all()
    assert (batch["timestamp"][pad] == -1).all()
    assert batch["labels"][pad].isnan().all()
    assert (batch["timestamp"][batch["mask"]] >= 0).all()


def test_hop_gives_overlapping_windows(wild):
    dm = MuseDataModule(wild.path, "wild", ["egemaps"], window=50, hop=25)
    dm.setup()
    assert len(dm.train_dataset) == 4 + 1 + 1


# -- evaluation coverage and predictions_frame ----------------------------------------------


@pytest.mark.parametrize("eval_window", [None, 16])
def test_eval_sequences_cover_every_row_once(wild, eval_window):
    dm = MuseDataModule(wild.path, "wild", ["egemaps"], eval_window=eval_window,
                        eval_batch_size=3)
    for partition, loader in (("devel", dm.val_dataloader()), ("test", dm.test_dataloader()),
                              ("train", dm.predict_dataloader("train"))):
        got = list(loader)
        if eval_window is not None:
            assert max(b["features"].shape[1] for b in got) <= eval_window
        keys = pd.DataFrame({
            "id": torch.cat([b["video_id"][:, None].expand_as(b["mask"])[b["mask"]]
                             for b in got]).numpy(),
            "timestamp": torch.cat([b["timestamp"][b["mask"]] for b in got]).numpy(),
        })
        rows = partition_rows(wild, partition)
        video_of_row = np.repeat(wild.video_ids, np.diff(wild.offsets))
        expected = pd.DataFrame({"id": video_of_row[rows], "timestamp": wild.timestamps[rows]})
        assert not keys.duplicated().any()
        pd.testing.assert_frame_equal(
            keys.sort_values(["id", "timestamp"]).reset_index(drop=True), expected
        )


@pytest.mark.parametrize("eval_window", [None, 16])
def test_predictions_frame_gives_the_store_keys(trust, eval_window):
    dm = MuseDataModule(trust.path, "trust", ["au"], eval_window=eval_window, eval_batch_size=2)
    got = list(dm.val_dataloader())
    # A "model" that predicts the timestamp / 1000 for trustworthiness and -id for valence.
    preds = [{"trustworthiness": b["timestamp"] / 1000,
              "valence": -b["video_id"][:, None].expand_as(b["mask"]).float()} for b in got]
    frame = dm.predictions_frame(got, preds)
    rows = partition_rows(trust, "devel")
    video_of_row = np.repeat(trust.video_ids, np.diff(trust.offsets))
    assert list(frame.columns) == ["id", "timestamp", "prediction_trustworthiness",
                                   "prediction_valence"]
    assert frame["id"].tolist() == video_of_row[rows].tolist()
    assert frame["timestamp"].tolist() == trust.timestamps[rows].tolist()
    np.testing.assert_allclose(frame["prediction_trustworthiness"], frame["timestamp"] / 1000)
    assert (frame["prediction_valence"] == -frame["id"]).all()
    # Stacked (B,T,n) predictions in the datamodule's target order give the same frame.
    stacked = [torch.stack([p["trustworthiness"], torch.zeros_like(p["valence"]),
                            p["valence"]], dim=-1) for p in preds]
    stacked_frame = dm.predictions_frame(got, stacked)
    pd.testing.assert_frame_equal(stacked_frame[frame.columns], frame)


# -- values ---------------------------------------------------------------------------------


def test_batch_values_equal_the_store_in_the_given_fusion_order(trust):
    dm = MuseDataModule(trust.path, "trust", ["au", "egemaps"],
                        targets=["valence", "trustworthiness"], eval_batch_size=1,
                        normalize=False)
    assert dm.feature_dim == 4 + 3 and dm.targets == ("valence", "trustworthiness")
    fused = np.concatenate([trust.features["au"], trust.features["egemaps"]], axis=1)
    labels = np.stack([trust.labels["valence"], trust.labels["trustworthiness"]], axis=1)
    devel = [v for v, p in enumerate(trust.partitions) if p == "devel"]
    for video, batch in zip(devel, list(dm.val_dataloader()), strict=True):
        rows = slice(trust.offsets[video], trust.offsets[video + 1])
        assert batch["video_id"].tolist() == [trust.video_ids[video]]
        np.testing.assert_array_equal(batch["features"][0].numpy(), fused[rows])
        np.testing.assert_array_equal(batch["labels"][0].numpy(), labels[rows])
        np.testing.assert_array_equal(batch["timestamp"][0].numpy(), trust.timestamps[rows])
        assert batch["mask"].all()


def test_nan_labels_are_kept(wild):
    dm = MuseDataModule(wild.path, "wild", ["egemaps"])
    test_labels = torch.cat([b["labels"][b["mask"]] for b in dm.test_dataloader()])
    assert test_labels.isnan().all()
    train = list(dm.predict_dataloader("train"))
    assert sum(int(b["labels"][b["mask"]].isnan().any(-1).sum()) for b in train) == 1


# -- normalisation ---------------------------------------------------------------------------


def test_normalisation_uses_train_rows_only(wild):
    dm = MuseDataModule(wild.path, "wild", ["vggface", "au"], normalize=True, eval_batch_size=1)
    fused = np.concatenate([wild.features["vggface"], wild.features["au"]], axis=1)
    train = fused[partition_rows(wild, "train")].astype(np.float64)
    dm.setup()
    normalizer = dm.dataset("devel").normalizer
    np.testing.assert_allclose(normalizer.mean, train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(normalizer.std, train.std(0), rtol=1e-6)
    # Devel rows are shifted by +5: the train statistics leave that visible.
    batch = next(iter(dm.val_dataloader()))
    video = wild.partitions.index("devel")
    expected = (fused[wild.offsets[video]:wild.offsets[video + 1]] - normalizer.mean) \
        / normalizer.std
    np.testing.assert_allclose(batch["features"][0].numpy(), expected, rtol=1e-6)
    assert batch["features"][0].mean() > 1.0


def test_constant_dimension_keeps_std_one():
    rows = MemoryRows(np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 9.0]], dtype=np.float32))
    normalizer = Normalizer.fit(rows, [0], [2])
    assert normalizer.mean.tolist() == [1.0, 3.0]
    assert normalizer.std.tolist() == [1.0, 1.0]
    assert normalizer(rows.read(2, 3)).tolist() == [[0.0, 6.0]]


# -- topic ------------------------------------------------------------------------------------


def segments_of(topic, partition: str) -> list[int]:
    partition_of = dict(zip(topic.video_ids.tolist(), topic.partitions, strict=True))
    return [s for s, v in enumerate(topic.segment_video_ids.tolist())
            if partition_of[v] == partition]


def test_topic_segments_are_cropped_and_padded(topic):
    dm = MuseDataModule(topic.path, "topic", ["fasttext", "egemaps"], segment_length=8,
                        normalize=False)
    assert dm.num_classes == {"topic": 10, "arousal": 3, "valence": 3}
    assert dm.feature_dim == 5 + 3
    train = dm.train_dataset
    batch = collate_segments([train[i] for i in range(len(train))], min_length=8)
    fused = np.concatenate([topic.features["fasttext"], topic.features["egemaps"]], axis=1)
    offsets = topic.segment_offsets["egemaps_aligned"]
    segments = segments_of(topic, "train")
    assert batch["features"].shape == (len(segments), 8, 8)
    lengths = []
    for b, s in enumerate(segments):
        n = min(8, offsets[s + 1] - offsets[s])
        lengths.append(n)
        assert batch["mask"][b].tolist() == [True] * n + [False] * (8 - n)
        np.testing.assert_array_equal(batch["features"][b, :n].numpy(),
                                      fused[offsets[s]:offsets[s] + n])
        assert (batch["features"][b, n:] == 0).all()
        assert batch["labels"][b].tolist() == [int(topic.labels[t][s])
                                                for t in ("topic", "arousal", "valence")]
        assert batch["text"][b] == topic.texts[s]
        assert batch["segment_id"][b] == topic.segment_ids[s]
        assert batch["video_id"][b] == topic.segment_video_ids[s]
    assert 8 in lengths and min(lengths) < 8  # both a cropped and a padded segment
    assert (batch["labels"] == -1).any()  # a missing arousal label stays -1
    # The loaders pad every batch to the segment length.
    assert next(iter(dm.train_dataloader()))["features"].shape[1] == 8


def test_balanced_class_weights_count_the_train_segments(topic):
    """n / (classes * count) over the segments of every train video (ids 2 and 6, the first
    and third video: a segment's video is found by index, not confused with its id)."""
    store = Store(topic.path)
    np.testing.assert_array_equal(store.segment_videos(),
                                  np.searchsorted(topic.video_ids, topic.segment_video_ids))
    train_ids = [v for v, p in zip(topic.video_ids, topic.partitions, strict=True)
                 if p == "train"]
    train = np.isin(topic.segment_video_ids, train_ids)
    assert set(topic.segment_video_ids[train]) == {2, 6}
    labels = topic.labels["arousal"][train]
    counts = np.bincount(labels[labels >= 0], minlength=3).astype(float)
    expected = np.where(counts > 0, counts.sum() / (3 * np.maximum(counts, 1)), 1.0)
    dm = MuseDataModule(topic.path, "topic", ["egemaps"])
    assert class_weights(dm, "arousal", 3) == pytest.approx(expected.tolist())


def test_topic_fasttext_alignment_and_predictions_frame(topic):
    dm = MuseDataModule(topic.path, "topic", ["fasttext"], alignment="fasttext_aligned",
                        targets=["topic"], segment_length=4, eval_batch_size=2,
                        normalize=False)
    got = list(dm.val_dataloader())
    offsets = topic.segment_offsets["fasttext_aligned"]
    first = segments_of(topic, "devel")[0]
    n = min(4, offsets[first + 1] - offsets[first])
    np.testing.assert_array_equal(
        got[0]["features"][0, :n].numpy(),
        topic.word_features["fasttext"][offsets[first]:offsets[first] + n],
    )
    # Logits (B, 10) per segment: the frame holds their argmax, keyed by (id, segment_id).
    logits = [{"topic": torch.nn.functional.one_hot(b["segment_id"] + 2, 10).float()}
              for b in got]
    frame = dm.predictions_frame(got, logits)
    assert list(frame.columns) == ["id", "segment_id", "prediction_topic"]
    assert frame["prediction_topic"].dtype == np.int64
    assert (frame["prediction_topic"] == frame["segment_id"] + 2).all()
    expected = [(int(topic.segment_video_ids[s]), int(topic.segment_ids[s]))
                for s in segments_of(topic, "devel")]
    assert list(zip(frame["id"], frame["segment_id"], strict=True)) == expected


# -- audio ------------------------------------------------------------------------------------


def test_audio_steps_are_the_int16_slices(wild):
    dm = MuseDataModule(wild.path, "wild", ["egemaps"], audio=True, eval_batch_size=1)
    assert dm.audio_samples_per_step == AUDIO_RATE * 250 // 1000 == 20
    devel = [v for v, p in enumerate(wild.partitions) if p == "devel"]
    for video, batch in zip(devel, list(dm.val_dataloader()), strict=True):
        signal = wild.audio[wild.audio_offsets[video]:wild.audio_offsets[video + 1]]
        for step, t in enumerate(batch["timestamp"][0].tolist()):
            start = t * AUDIO_RATE // 1000
            expected = np.zeros(20, dtype=np.float32)
            chunk = signal[start:start + 20]
            expected[:len(chunk)] = chunk / 32768
            np.testing.assert_array_equal(batch["audio"][0, step].numpy(), expected)
        # The signal ends 7 samples before the last step does.
        assert (batch["audio"][0, -1, -7:] == 0).all()
        assert (batch["audio"][0, -1, :-7] != 0).any()


def test_audio_needs_a_continuous_task_and_a_store_with_audio(tmp_path, topic):
    with pytest.raises(ValueError, match="continuous"):
        MuseDataModule(topic.path, "topic", ["egemaps"], audio=True)
    silent = write_continuous_store(tmp_path / "silent.h5", "wild", audio=False)
    dm = MuseDataModule(silent.path, "wild", ["egemaps"], audio=True)
    assert dm.audio_samples_per_step == 0
    with pytest.raises(StoreError, match="prepared without audio"):
        dm.setup()


# -- streaming vs memory, workers ------------------------------------------------------------


def _loaders(dm: MuseDataModule) -> list[list[dict]]:
    return [list(dm.train_dataloader()), list(dm.val_dataloader()),
            list(dm.test_dataloader())]


def test_streaming_yields_the_same_batches_as_memory(wild):
    options = dict(task="wild", features=["au", "egemaps"], normalize=True, audio=True,
                   batch_size=2, eval_window=16, seed=3)
    memory = MuseDataModule(wild.path, memory_budget_mb=64, **options)
    streamed = MuseDataModule(wild.path, memory_budget_mb=0, **options)
    memory.setup()
    streamed.setup()
    train_m, train_s = memory.train_dataset, streamed.train_dataset
    assert train_m.rows.in_memory and train_m.audio.in_memory
    assert not train_s.rows.in_memory and not train_s.audio.in_memory
    for left, right in zip(_loaders(memory), _loaders(streamed), strict=True):
        assert_same_batches(left, right)


def test_streaming_loader_with_two_workers(wild):
    options = dict(task="wild", features=["egemaps", "vggface"], audio=True, batch_size=2,
                   seed=5)
    memory = MuseDataModule(wild.path, **options)
    streamed = MuseDataModule(wild.path, memory_budget_mb=0, num_workers=2, **options)
    # Read in the main process first: workers must not reuse the parent's open handle.
    streamed.setup()
    streamed.dataset("devel")[0]
    assert_same_batches(list(memory.train_dataloader()), list(streamed.train_dataloader()))
    assert_same_batches(list(memory.val_dataloader()), list(streamed.val_dataloader()))


@pytest.mark.slow
def test_store_pickles_without_its_handle(wild):
    dm = MuseDataModule(wild.path, "wild", ["au"], memory_budget_mb=0, audio=True)
    dm.setup()
    dataset = dm.dataset("devel")
    before = dataset[1]
    copy = pickle.loads(pickle.dumps(dataset))
    after = copy[1]
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    loader = DataLoader(copy, batch_size=2, collate_fn=collate_sequences, num_workers=2,
                        multiprocessing_context="spawn")
    assert sum(int(b["mask"].sum()) for b in loader) == len(partition_rows(wild, "devel"))


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [({"schema_version": 2}, "schema version 2"),
     ({"complete": None}, "incomplete"),
     ({"complete": False}, "incomplete")],
)
def test_bad_store_raises_store_error_naming_the_file(tmp_path, options, message):
    path = tmp_path / "bad.h5"
    write_continuous_store(path, "wild", **options)
    dm = MuseDataModule(path, "wild", ["egemaps"])
    with pytest.raises(StoreError, match=message) as error:
        dm.setup()
    assert str(path) in str(error.value)


def test_missing_or_foreign_store_raises_store_error(tmp_path, wild):
    with pytest.raises(StoreError, match="no such store"):
        MuseDataModule(tmp_path / "absent.h5", "wild", ["egemaps"]).setup()
    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("hello")
    with pytest.raises(StoreError, match="not a readable HDF5"):
        MuseDataModule(not_hdf5, "wild", ["egemaps"]).setup()
    with pytest.raises(StoreError, match="a wild store, not trust"):
        MuseDataModule(wild.path, "trust", ["egemaps"]).setup()


def test_unknown_feature_or_target_lists_what_the_store_has(wild):
    with pytest.raises(StoreError, match="no feature gocar .*the store has: au, egemaps, vggface"):
        MuseDataModule(wild.path, "wild", ["egemaps", "gocar"]).setup()
    with pytest.raises(StoreError, match="no target topic"):
        _ = MuseDataModule(wild.path, "wild", ["egemaps"], targets=["topic"]).targets


def test_default_targets_and_continuous_properties(trust):
    dm = MuseDataModule(trust.path, "trust", "egemaps,au")
    assert dm.targets == ("trustworthiness", "arousal", "valence")
    assert dm.num_classes == {}
    assert dm.feature_dim == 7
    assert len(CONTINUOUS_VIDEOS) == len(dm.store.video_ids)


# -- reading chunks straight from the file's bytes ---------------------------------------------


def _grow(file: h5py.File, name: str, values: np.ndarray, rows_per_chunk: int,
          pieces: int = 3, **options) -> h5py.Dataset:
    """A resizable chunked dataset appended to in uneven pieces, as muse prepare writes them."""
    if name in file:
        del file[name]
    tail = values.shape[1:]
    dataset = file.create_dataset(name, shape=(0, *tail), maxshape=(None, *tail),
                                  dtype=values.dtype, chunks=(rows_per_chunk, *tail), **options)
    for piece in np.array_split(values, pieces):
        dataset.resize(dataset.shape[0] + len(piece), axis=0)
        dataset[len(dataset) - len(piece):] = piece
    if values.ndim == 2:
        dataset.attrs["dim"] = values.shape[1]
    return dataset


def _assert_same_array(got: np.ndarray, expected: np.ndarray) -> None:
    assert type(got) is np.ndarray and got.flags.writeable
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()  # bit for bit, NaN payloads included


@pytest.fixture
def tiny_chunks(tmp_path):
    """A file of small datasets: chunked (8 or 64 rows a chunk, last chunk partial), contiguous,
    and some that must be read through h5py (compressed, shuffled, big-endian)."""
    rng = np.random.default_rng(4)
    floats = rng.normal(size=(103, 3)).astype(np.float32)
    floats[[0, 17, 102], [1, 2, 0]] = np.nan
    samples = rng.integers(-32768, 32768, size=1000).astype(np.int16)
    path = tmp_path / "chunks.h5"
    with h5py.File(path, "w") as file:
        _grow(file, "floats", floats, 8)
        _grow(file, "samples", samples, 64)
        file["contiguous"] = floats.astype(np.float64)
        _grow(file, "gzip", floats, 8, compression="gzip", shuffle=True)
        _grow(file, "big_endian", floats.astype(">f4"), 8)
        _grow(file, "lzf_samples", samples, 64, compression="lzf")
    return path


def test_chunked_array_equals_h5py_for_any_row_range(tiny_chunks):
    with h5py.File(tiny_chunks, "r") as file:
        file_map = map_file(tiny_chunks, file)
        assert file_map is not None
        rng = np.random.default_rng(0)
        for name, mapped in [("floats", True), ("samples", True), ("contiguous", True),
                             ("gzip", False), ("big_endian", False), ("lzf_samples", False)]:
            dataset = file[name]
            array = ChunkedArray(dataset, file_map)
            assert array.mapped is mapped, name
            n = len(dataset)
            chunk = dataset.chunks[0] if dataset.chunks else n
            if dataset.chunks:
                assert n % chunk, "the last chunk should be partial"
            ranges = [tuple(r) for r in rng.integers(-n // 4, n + n // 4, size=(300, 2))]
            ranges += [(a, a + chunk + 1) for a in range(0, n, max(1, chunk // 3))]  # crossing
            ranges += [(0, n), (n - 1, n), (n - chunk - 5, None), (None, 3), (5, 5), (7, 2),
                       (-3, None), (n, n + 4), (chunk - 1, 3 * chunk + 1)]
            for start, stop in ranges:
                expected = dataset[start:stop]
                _assert_same_array(array[start:stop], expected)
                _assert_same_array(array.read(start, stop), expected)
                views = array.views(start, stop)
                assert all(view.dtype == expected.dtype for view in views)
                assert b"".join(view.tobytes() for view in views) == expected.tobytes()
                out = np.full(expected.shape, 7, dtype=expected.dtype)
                assert array.read(start, stop, out=out) is out
                assert out.tobytes() == expected.tobytes()
            # Other keys are h5py's business.
            np.testing.assert_array_equal(array[::7], dataset[::7])
            np.testing.assert_array_equal(array[5], dataset[5])


def test_chunked_array_without_a_map_reads_through_h5py(tiny_chunks):
    with h5py.File(tiny_chunks, "r") as file:
        array = ChunkedArray(file["floats"], None)
        assert not array.mapped
        _assert_same_array(array[10:30], file["floats"][10:30])


def test_no_map_of_a_file_replaced_since_it_was_opened(tiny_chunks, tmp_path):
    with h5py.File(tiny_chunks, "r") as file:
        assert map_file(tiny_chunks, file) is not None
        other = tmp_path / "other.h5"
        with h5py.File(other, "w") as replacement:
            replacement["floats"] = np.zeros((103, 3), dtype=np.float32)
        os.replace(other, tiny_chunks)
        assert map_file(tiny_chunks, file) is None
        assert not ChunkedArray(file["floats"], None).mapped


def test_features_held_in_memory_are_never_held_twice(wild, monkeypatch):
    """Fusing reads each set into its columns block by block: a set the size of the budget
    must not need twice the budget while it is loaded."""
    rows = len(wild.timestamps)
    wide = np.random.default_rng(5).standard_normal((rows, 20_000)).astype(np.float32)
    with h5py.File(wild.path, "a") as file:
        file["label_aligned/features/wide"] = wide
    monkeypatch.setattr(store_module, "READ_BLOCK_BYTES", 2**20)
    store = Store(wild.path, memory_budget_mb=64)
    tracemalloc.start()
    try:
        held = store.rows("label_aligned", ["egemaps", "wide"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held.in_memory
    fused_bytes = held.fused.nbytes
    assert fused_bytes > 25 * 2**20
    assert peak < fused_bytes + 4 * 2**20  # the fused array plus about two blocks
    np.testing.assert_array_equal(held.fused[:, 3:], wide)
    np.testing.assert_array_equal(held.fused[:, :3], wild.features["egemaps"])


@pytest.fixture
def wild_tiny_chunks(wild):
    """The wild store with its features and audio rewritten as small chunks (features: 7 rows,
    audio: 48 samples, last chunks partial), `au` gzip-compressed (read through h5py)."""
    with h5py.File(wild.path, "a") as file:
        for name, values in wild.features.items():
            _grow(file, f"label_aligned/features/{name}", values, 7,
                  **({"compression": "gzip"} if name == "au" else {}))
        _grow(file, "audio/samples", wild.audio, 48)
    return wild


def test_streamed_tiny_chunks_give_the_memory_batches(wild_tiny_chunks):
    wild = wild_tiny_chunks
    store = Store(wild.path, memory_budget_mb=0)
    for name, values in wild.features.items():
        array = store.chunked(f"label_aligned/features/{name}")
        assert array.mapped is (name != "au")
        assert len(values) % 7 and array.dataset.chunks == (7, values.shape[1])
        _assert_same_array(array[:], values)
    assert store.chunked("audio/samples").mapped
    assert pickle.loads(pickle.dumps(store))._map is None  # the map is never pickled

    options = dict(task="wild", features=["vggface", "au", "egemaps"], normalize=True,
                   audio=True, batch_size=3, eval_window=16, seed=11)
    memory = MuseDataModule(wild.path, memory_budget_mb=64, **options)
    streamed = MuseDataModule(wild.path, memory_budget_mb=0, **options)
    memory.setup()
    streamed.setup()
    assert memory.train_dataset.rows.in_memory and memory.train_dataset.audio.in_memory
    rows, audio = streamed.train_dataset.rows, streamed.train_dataset.audio
    assert not rows.in_memory and not audio.in_memory
    # Every window of every length, at every start: crosses chunk boundaries of all sizes.
    fused = np.concatenate([wild.features[n] for n in ("vggface", "au", "egemaps")], axis=1)
    for start in range(len(fused)):
        for length in (1, 7, 8, 16, 50):
            _assert_same_array(rows.read(start, start + length), fused[start:start + length])
    for left, right in zip(_loaders(memory), _loaders(streamed), strict=True):
        assert_same_batches(left, right)


def test_streamed_audio_steps_equal_memory_steps_across_gaps_and_the_end(wild_tiny_chunks):
    wild = wild_tiny_chunks
    memory = Store(wild.path).audio()
    streamed = Store(wild.path, memory_budget_mb=0).audio()
    assert memory.in_memory and not streamed.in_memory
    rng = np.random.default_rng(3)
    for video in range(len(wild.video_ids)):
        stamps = wild.timestamps[wild.offsets[video]:wild.offsets[video + 1]]
        signal = wild.audio[wild.audio_offsets[video]:wild.audio_offsets[video + 1]]
        cases = [stamps, stamps[:0], stamps[-3:], stamps[::2],
                 np.sort(rng.integers(0, stamps[-1] + 2000, size=12))]  # overlaps, past the end
        for timestamps in cases:
            got = streamed.steps(video, timestamps)
            _assert_same_array(got, memory.steps(video, timestamps))
            expected = np.zeros((len(timestamps), 20), dtype=np.float32)
            for k, t in enumerate(timestamps.tolist()):
                values = signal[t * AUDIO_RATE // 1000:][:20]
                expected[k, :len(values)] = values / 32768
            assert got.tobytes() == expected.tobytes()


def test_streamed_tiny_chunks_with_two_workers(wild_tiny_chunks):
    wild = wild_tiny_chunks
    options = dict(task="wild", features=["egemaps", "vggface"], audio=True, batch_size=2,
                   seed=5)
    memory = MuseDataModule(wild.path, **options)
    streamed = MuseDataModule(wild.path, memory_budget_mb=0, num_workers=2, **options)
    # Map the file in the main process first: the workers must make their own maps.
    streamed.setup()
    streamed.dataset("devel")[0]
    assert streamed.train_dataset.rows.store._map is not None
    assert_same_batches(list(memory.train_dataloader()), list(streamed.train_dataloader()))
    assert_same_batches(list(memory.val_dataloader()), list(streamed.val_dataloader()))
