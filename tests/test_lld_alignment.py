"""Label-aligned LLD on MuSe-Wild and MuSe-Trust: the mean of the 10 ms frames in each label
step's `[t, t + 250)` window, written by `muse prepare`, loaded by the datamodule, and learnable
(LLD is an audio feature: it carries arousal)."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from test_module import fit

from muse.data.datamodule import MuseDataModule
from muse.package.layout import feature_dir, label_dir
from muse.store.prepare import prepare
from muse.store.prepare.frames import step_means
from muse.store.prepare.plan import plan

# The package `muse.store.prepare` exports a function `plan` that hides its module of that name.
plan_module = importlib.import_module("muse.store.prepare.plan")

LLD_DIM = 130
LLD_COLUMNS = [str(i) for i in range(LLD_DIM)]


def video_rows(store: h5py.File, table: str, index: int) -> slice:
    offsets = store[f"{table}/video_offsets"]
    return slice(int(offsets[index]), int(offsets[index + 1]))


# -- the mean per step ----------------------------------------------------------------------------


def test_step_means_by_hand() -> None:
    steps = np.array([0, 250, 500, 1000])  # no step at 750: a gap
    frames = np.array([-10, 0, 100, 249, 250, 800, 1000, 1240, 1250])
    values = np.arange(len(frames) * 2, dtype=np.float32).reshape(-1, 2) ** 2
    means, empty = step_means(frames, values, steps)
    expected = np.stack([
        values[[1, 2, 3]].mean(axis=0),  # -10 is before the first step
        values[4],                       # 250 opens the second step
        np.zeros(2),                     # nothing in [500, 750)
        values[[6, 7]].mean(axis=0),     # 800 lies in the gap; 1250 is after the last step
    ])
    np.testing.assert_allclose(means, expected, rtol=1e-6)
    assert means.dtype == np.float32
    np.testing.assert_array_equal(empty, [False, False, True, False])

    shuffled = np.random.default_rng(0).permutation(len(frames))
    again, _ = step_means(frames[shuffled], values[shuffled], steps)
    np.testing.assert_allclose(again, expected, rtol=1e-6)


def test_step_means_without_frames_are_zero() -> None:
    means, empty = step_means(np.empty(0, np.int64), np.empty((0, 3), np.float32),
                              np.array([0, 250]))
    assert means.shape == (2, 3) and not means.any() and empty.all()


# -- through `muse prepare` -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lld_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from muse.package.synthetic import synthesize

    out = tmp_path_factory.mktemp("lld") / "package"
    return synthesize(out, videos=5, minutes=0.3, seed=3, features=["egemaps", "lld"])


def train_videos(package: Path) -> list[int]:
    frame = pd.read_csv(package / "metadata" / "partition.csv")
    return sorted(frame.loc[frame["Proposal"] == "train", "Id"].astype(int))


def drop_step(package: Path, video: int, row: int) -> None:
    """Remove one label step (labels and the aligned egemaps row): a gap between two steps."""
    paths = [label_dir(package, "wild", t) / f"{video}.csv" for t in ("arousal", "valence")]
    paths.append(feature_dir(package, "wild", "label_aligned") / "egemaps" / f"{video}.csv")
    for path in paths:
        pd.read_csv(path).drop(index=row).to_csv(path, index=False)


@pytest.mark.slow
def test_prepare_stores_the_step_means_of_made_up_frames(lld_package: Path,
                                                         tmp_path: Path) -> None:
    package = tmp_path / "package"
    shutil.copytree(lld_package, package)
    video, without_file = train_videos(package)[:2]
    drop_step(package, video, 5)
    steps = pd.read_csv(label_dir(package, "wild", "arousal") / f"{video}.csv")
    t = steps["timestamp"].to_numpy()
    gap = t[4] + 250
    assert t[5] == gap + 250  # the dropped step leaves [gap, gap + 250) to no step
    times = [t[0] - 10, t[0], t[0] + 100, t[0] + 249, t[1], t[3] + 10, gap + 50, t[-1] + 240,
             t[-1] + 250]
    values = np.arange(len(times) * LLD_DIM, dtype=np.float64).reshape(len(times), -1) % 97
    frame = pd.DataFrame(values, columns=LLD_COLUMNS)
    frame.insert(0, "segment_id", steps["segment_id"].iloc[0])
    frame.insert(0, "timestamp", times)
    frame.to_csv(feature_dir(package, "wild", "unaligned") / "lld" / f"{video}.csv", index=False)
    (feature_dir(package, "wild", "unaligned") / "lld" / f"{without_file}.csv").unlink()

    path = prepare(package, tmp_path / "out", tasks=["wild"], audio_rate=0)["wild"]
    with h5py.File(path, "r") as store:
        ids = list(store["videos/id"][:])
        rows = video_rows(store, "label_aligned", ids.index(video))
        stored = store["label_aligned/features/lld"][rows]
        absent = store["label_aligned/features/lld"][video_rows(store, "label_aligned",
                                                                ids.index(without_file))]
        empty_steps = json.loads(store.attrs["empty_steps"])
        assert store["label_aligned/features/lld"].attrs["dim"] == LLD_DIM
    expected = np.zeros((len(t), LLD_DIM))
    expected[0] = values[[1, 2, 3]].mean(axis=0)  # t[0] - 10 is before the first step
    expected[1] = values[4]
    expected[3] = values[5]
    expected[-1] = values[7]  # t[-1] + 250 is after the last step; gap + 50 in no step
    np.testing.assert_allclose(stored, expected, rtol=1e-6)
    assert not absent.any()
    # Every step but four of the made-up video, and every step of the one without a file.
    assert empty_steps == {"label_aligned/lld": len(t) - 4 + len(absent)}


@pytest.mark.slow
def test_a_new_prepare_format_prepares_again(lld_package: Path, monkeypatch) -> None:
    before = plan(lld_package, "wild", None).fingerprint(0)
    monkeypatch.setattr(plan_module, "PREPARE_FORMAT", plan_module.PREPARE_FORMAT + 1)
    assert plan(lld_package, "wild", None).fingerprint(0) != before


@pytest.mark.slow
def test_topic_prepares_lld_alone(lld_package: Path, tmp_path: Path) -> None:
    """MuSe-Topic has LLD unaligned only: a store of it alone has no aligned tables, and its
    segments still get their times from the package's egemaps_aligned files."""
    path = prepare(lld_package, tmp_path / "out", tasks=["topic"], features=["lld"],
                   audio_rate=0)["topic"]
    with h5py.File(path, "r") as store:
        assert "egemaps_aligned" not in store and "fasttext_aligned" not in store
        assert store["unaligned/lld/features/lld"].shape[1] == LLD_DIM
        assert len(store["segments/segment_id"]) > 0
        assert (store["segments/start"][:] >= 0).all()
    datamodule = MuseDataModule(path, "topic", ["lld"], alignment="unaligned", batch_size=4)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["modalities"]["lld"].shape[-1] == LLD_DIM


# -- the session's demo stores --------------------------------------------------------------------


@pytest.mark.parametrize("task", ["wild", "trust"])
def test_demo_store_has_lld_on_every_label_step(demo_stores: dict[str, Path], task: str) -> None:
    with h5py.File(demo_stores[task], "r") as store:
        lld = store["label_aligned/features/lld"]
        assert lld.shape == (len(store["label_aligned/timestamp"]), LLD_DIM)
        assert json.loads(store.attrs["empty_steps"]) == {}
        for index in range(len(store["videos/id"])):
            rows = video_rows(store, "label_aligned", index)
            frames = video_rows(store, "unaligned/lld", index)
            table = pd.DataFrame(store["unaligned/lld/features/lld"][frames], columns=LLD_COLUMNS)
            step = store["unaligned/lld/timestamp"][frames] // 250 * 250
            means = table.groupby(step).mean()
            expected = means.loc[store["label_aligned/timestamp"][rows]].to_numpy(np.float32)
            np.testing.assert_allclose(lld[rows], expected, rtol=1e-5, atol=1e-5)


def test_topic_store_keeps_lld_unaligned_only(demo_stores: dict[str, Path]) -> None:
    with h5py.File(demo_stores["topic"], "r") as store:
        assert "label_aligned" not in store
        for alignment in ("egemaps_aligned", "fasttext_aligned"):
            assert "lld" not in store[f"{alignment}/features"]
        assert store["unaligned/lld/features/lld"].shape[1] == LLD_DIM
        assert json.loads(store.attrs["empty_steps"]) == {}


def test_datamodule_loads_lld(demo_stores: dict[str, Path]) -> None:
    dm = MuseDataModule(demo_stores["wild"], "wild", ["lld"], batch_size=4)
    dm.setup("fit")
    assert dm.feature_dim == LLD_DIM
    batch = next(iter(dm.train_dataloader()))
    assert batch["features"].shape[0] == 4 and batch["features"].shape[2] == LLD_DIM
    assert np.isfinite(batch["features"].numpy()).all()


def test_lstm_learns_arousal_from_lld(demo_stores: dict[str, Path]) -> None:
    dm = MuseDataModule(demo_stores["wild"], "wild", ["lld"], batch_size=8, hop=10,
                        eval_window=50)
    assert fit(dm, epochs=2, lr=1e-3)["devel/arousal/ccc"] >= 0.4
