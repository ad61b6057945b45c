"""`muse demo`: the README's first command generates and prepares the demo once, then reuses it."""

from __future__ import annotations

from pathlib import Path

import h5py

from muse.cli import main as muse_main


def test_demo_is_generated_once_and_prepared_for_every_task(tmp_path: Path, capsys) -> None:
    assert muse_main(["demo", "--data", str(tmp_path)]) == 0
    stores = {task: tmp_path / f"{task}.h5" for task in ("wild", "topic", "trust")}
    for task, path in stores.items():
        with h5py.File(path, "r") as store:
            assert store.attrs["complete"] and store.attrs["task"] == task
            partitions = {p.decode() for p in store["videos/partition"][:]}
            assert partitions == {"train", "devel", "test"}
    written = {task: path.stat().st_mtime_ns for task, path in stores.items()}
    package_mtime = (tmp_path / "synthetic_package").stat().st_mtime_ns

    assert muse_main(["demo", "--data", str(tmp_path)]) == 0
    assert {task: path.stat().st_mtime_ns for task, path in stores.items()} == written
    assert (tmp_path / "synthetic_package").stat().st_mtime_ns == package_mtime
    assert "wild.h5" in capsys.readouterr().out
