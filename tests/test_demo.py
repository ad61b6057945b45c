"""`muse demo`: the README's first command generates and prepares the demo once, then reuses it,
and only ever in a folder that is empty or already the demo's."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest
from store_factory import write_continuous_store

from muse.cli import main as muse_main
from muse.errors import MuseError
from muse.store.demo import DEMO_MARKER, ensure_demo, is_demo_store
from muse.store.sources import store_for


@pytest.mark.slow
def test_demo_is_generated_once_and_prepared_for_every_task(tmp_path: Path, capsys) -> None:
    assert muse_main(["demo", "--data", str(tmp_path)]) == 0
    stores = {task: tmp_path / f"{task}.h5" for task in ("wild", "topic", "trust")}
    for task, path in stores.items():
        with h5py.File(path, "r") as store:
            assert store.attrs["complete"] and store.attrs["task"] == task
            partitions = {p.decode() for p in store["videos/partition"][:]}
            assert partitions == {"train", "devel", "test"}
        assert is_demo_store(path)
    assert (tmp_path / DEMO_MARKER).is_file()
    written = {task: path.stat().st_mtime_ns for task, path in stores.items()}
    package_mtime = (tmp_path / "synthetic_package").stat().st_mtime_ns

    assert muse_main(["demo", "--data", str(tmp_path)]) == 0
    assert {task: path.stat().st_mtime_ns for task, path in stores.items()} == written
    assert (tmp_path / "synthetic_package").stat().st_mtime_ns == package_mtime
    assert "wild.h5" in capsys.readouterr().out


def test_a_store_prepared_from_a_package_is_not_the_demo(demo_stores: dict[str, Path]) -> None:
    assert not is_demo_store(demo_stores["wild"])


def test_a_missing_store_beside_a_real_one_is_an_error_not_the_demo(
        demo_stores: dict[str, Path], tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    real = shutil.copy2(demo_stores["wild"], data / "wild.h5")  # prepared from a package
    before = Path(real).read_bytes()
    with pytest.raises(MuseError) as caught:
        store_for("topic", data)
    message = str(caught.value)
    assert f"no prepared topic store in {data} (topic.h5 is missing)" in message
    assert f"muse prepare --package /path/to/muse2020 --out {data} --tasks topic" in message
    assert Path(real).read_bytes() == before
    assert sorted(p.name for p in data.iterdir() if not p.name.startswith(".")) == ["wild.h5"]


def test_muse_demo_refuses_a_folder_with_other_data(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("my own files")
    assert muse_main(["demo", "--data", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "muse demo: error:" in error and "notes.txt" in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_store_rewritten_from_a_real_package_stops_being_the_demos(
        demo_package: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(demo_package, data / "synthetic_package")  # the demo's, already generated
    stores = ensure_demo(data)
    assert all(is_demo_store(path) for path in stores.values())
    write_continuous_store(data / "wild.h5")  # a store of other data, into the same folder
    assert not is_demo_store(stores["wild"]) and is_demo_store(stores["topic"])
    # The demo is then kept out: it would overwrite that store.
    with pytest.raises(MuseError, match=r"wild\.h5 \(not the demo's\)"):
        ensure_demo(data)
