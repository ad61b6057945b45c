"""`muse prepare`: quirks tolerated loudly, bad files named, writes atomic, reruns free."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from muse.cli import main as muse_main
from muse.errors import PackageError
from muse.package.layout import PARTITION_FILE, feature_dir, label_dir
from muse.store.prepare import prepare


@pytest.fixture(scope="session")
def small_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A very small package that tests copy and then damage."""
    from muse.package.synthetic import synthesize

    out = tmp_path_factory.mktemp("small") / "package"
    return synthesize(out, videos=5, minutes=0.3, seed=3, features=["egemaps", "fasttext"])


@pytest.fixture
def package(small_package: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "package"
    shutil.copytree(small_package, copy)
    return copy


def partition(package: Path) -> pd.DataFrame:
    return pd.read_csv(package / PARTITION_FILE)


def first_video(package: Path, split: str = "train") -> int:
    frame = partition(package)
    return int(frame.loc[frame["Proposal"] == split, "Id"].iloc[0])


def prepare_wild(package: Path, out: Path, **kwargs) -> h5py.File:
    path = prepare(package, out, tasks=["wild"], audio_rate=0, **kwargs)["wild"]
    return h5py.File(path, "r")


def test_label_column_orders_give_the_same_store(package: Path, tmp_path: Path) -> None:
    with prepare_wild(package, tmp_path / "a") as store:
        expected = store["label_aligned/labels/arousal"][:]
    for path in (label_dir(package, "wild", "arousal")).glob("*.csv"):
        frame = pd.read_csv(path)
        frame[["timestamp", "segment_id", "value"]].to_csv(path, index=False)
    with prepare_wild(package, tmp_path / "b") as store:
        np.testing.assert_array_equal(store["label_aligned/labels/arousal"][:], expected)


def test_duplicate_partition_rows_are_removed(package: Path, tmp_path: Path, caplog) -> None:
    frame = partition(package)
    pd.concat([frame, frame.iloc[:2]]).to_csv(package / PARTITION_FILE, index=False)
    with caplog.at_level(logging.WARNING), prepare_wild(package, tmp_path / "out") as store:
        ids = store["videos/id"][:]
    assert len(ids) == len(set(ids)) == len(frame)
    assert "duplicate" in caplog.text


def test_videos_without_labels_are_skipped_and_listed(package: Path, tmp_path: Path,
                                                      caplog) -> None:
    video = first_video(package, "train")
    for target in ("arousal", "valence"):
        (label_dir(package, "wild", target) / f"{video}.csv").unlink()
    with caplog.at_level(logging.WARNING), prepare_wild(package, tmp_path / "out") as store:
        assert video not in store["videos/id"][:]
        assert json.loads(store.attrs["skipped_videos"]) == [video]
    assert "without labels skipped" in caplog.text and str(video) in caplog.text


def test_test_videos_with_masked_labels_are_kept(package: Path, tmp_path: Path) -> None:
    video = first_video(package, "test")
    rows = len(pd.read_csv(label_dir(package, "wild", "arousal") / f"{video}.csv"))
    for target in ("arousal", "valence"):
        (label_dir(package, "wild", target) / f"{video}.csv").unlink()
    with prepare_wild(package, tmp_path / "out") as store:
        index = list(store["videos/id"][:]).index(video)
        offsets = store["label_aligned/video_offsets"][:]
        labels = store["label_aligned/labels/arousal"][offsets[index]:offsets[index + 1]]
    assert len(labels) == rows and np.isnan(labels).all()


def test_nan_cells_are_imputed_and_counted(package: Path, tmp_path: Path) -> None:
    video = first_video(package)
    path = feature_dir(package, "wild", "label_aligned") / "egemaps" / f"{video}.csv"
    frame = pd.read_csv(path)
    before = int(frame[[str(i) for i in range(88)]].isna().sum().sum())
    frame.loc[:2, ["0", "5"]] = np.nan
    frame.to_csv(path, index=False)
    after = int(frame[[str(i) for i in range(88)]].isna().sum().sum())
    with prepare_wild(package, tmp_path / "out") as store:
        counts = json.loads(store.attrs["nan_cells"])
        assert not np.isnan(store["label_aligned/features/egemaps"][:]).any()
    assert after > before
    assert counts["label_aligned/egemaps"] >= after


def test_unknown_feature_folder_is_accepted_with_its_own_dimension(package: Path,
                                                                   tmp_path: Path) -> None:
    source = feature_dir(package, "wild", "label_aligned") / "egemaps"
    extra = source.parent / "my_feature"
    extra.mkdir()
    for path in source.glob("*.csv"):
        frame = pd.read_csv(path)
        keep = ["timestamp", "segment_id"] + [str(i) for i in range(7)]
        frame[keep].to_csv(extra / path.name, index=False)
    with prepare_wild(package, tmp_path / "out") as store:
        values = store["label_aligned/features/my_feature"]
        assert values.shape[1] == 7 and values.attrs["dim"] == 7
        np.testing.assert_array_equal(values[:], store["label_aligned/features/egemaps"][:, :7])


def test_mismatching_rows_name_the_file_and_first_row(package: Path, tmp_path: Path) -> None:
    video = first_video(package)
    path = feature_dir(package, "wild", "label_aligned") / "egemaps" / f"{video}.csv"
    frame = pd.read_csv(path)
    frame.loc[3, "timestamp"] += 1
    frame.to_csv(path, index=False)
    with pytest.raises(PackageError, match=rf"{video}\.csv.*first mismatching row 3"):
        prepare_wild(package, tmp_path / "out")
    assert not (tmp_path / "out" / "wild.h5").exists()


def test_wrong_dimension_names_the_file(package: Path, tmp_path: Path) -> None:
    video = first_video(package)
    path = feature_dir(package, "wild", "label_aligned") / "egemaps" / f"{video}.csv"
    pd.read_csv(path).drop(columns=["87"]).to_csv(path, index=False)
    with pytest.raises(PackageError, match=rf"{video}\.csv: 87 feature columns, expected 88"):
        prepare_wild(package, tmp_path / "out")


@pytest.mark.parametrize("content", [b"", b"timestamp,segment_id\n", b"\x00\xff\xfe garbage"])
def test_empty_or_unreadable_file_is_named(package: Path, tmp_path: Path, content: bytes) -> None:
    video = first_video(package)
    path = feature_dir(package, "wild", "label_aligned") / "fasttext" / f"{video}.csv"
    path.write_bytes(content)
    with pytest.raises(PackageError, match=rf"fasttext/{video}\.csv"):
        prepare_wild(package, tmp_path / "out")


def test_interrupted_prepare_leaves_no_store(package: Path, tmp_path: Path, monkeypatch) -> None:
    from muse.store.prepare import continuous

    calls = []
    real = continuous.read_feature

    def interrupt_on_third_video(*args, **kwargs):
        calls.append(args[4])
        if len(set(calls)) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(continuous, "read_feature", interrupt_on_third_video)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        prepare(package, out, tasks=["wild"], audio_rate=0)
    assert list(out.iterdir()) == []


def test_rerun_on_unchanged_package_does_no_work(package: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = prepare(package, out, tasks=["wild"], audio_rate=0)["wild"]
    written = path.stat().st_mtime_ns
    prepare(package, out, tasks=["wild"], audio_rate=0)
    assert path.stat().st_mtime_ns == written
    prepare(package, out, tasks=["wild"], audio_rate=0, features=["egemaps"])
    assert path.stat().st_mtime_ns != written


def test_cli_reports_a_bad_file_in_one_line(package: Path, tmp_path: Path, capsys) -> None:
    video = first_video(package)
    path = feature_dir(package, "wild", "label_aligned") / "egemaps" / f"{video}.csv"
    path.write_text("")
    code = muse_main(["prepare", "--package", str(package), "--out", str(tmp_path / "o"),
                      "--tasks", "wild", "--no-audio"])
    assert code == 1
    assert f"egemaps/{video}.csv" in capsys.readouterr().err
