"""`muse prepare` on packages it did not write and on broken files, disks and processes.

Most tests use the hand-written package of tests/handmade_package.py (CRLF, BOM, header-only
files, absent folders) and break one file of it; each failure must be a one-line error naming
the file (and line and column where they apply), with nothing half-written left behind.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from handmade_package import (
    NAN_CELL,
    SILENT_SEGMENT,
    VIDEOS,
    steps,
    write,
    write_package,
)
from scipy.io import wavfile

from muse.cli import main as muse_main
from muse.errors import MuseError, PackageError, StoreError
from muse.package.layout import PARTITION_FILE, audio_file, feature_dir, label_dir
from muse.package.reader import read_audio
from muse.store import writer as store_writer
from muse.store.prepare import prepare
from muse.store.prepare.estimate import expected_store_bytes
from muse.store.prepare.plan import plan


@pytest.fixture
def package(tmp_path: Path) -> Path:
    return write_package(tmp_path / "muse2020")


def wild_egemaps(package: Path, video: int = 11) -> Path:
    return feature_dir(package, "wild", "label_aligned") / "egemaps" / f"{video}.csv"


def prepare_one(package: Path, out: Path, task: str = "wild", audio_rate: int = 0) -> Path:
    return prepare(package, out, tasks=[task], audio_rate=audio_rate)[task]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_handmade_package_prepares_with_its_values(package: Path, tmp_path: Path) -> None:
    path = prepare_one(package, tmp_path / "out", audio_rate=8000)
    source = pd.read_csv(wild_egemaps(package, 11))
    with h5py.File(path, "r") as store:
        assert list(store["videos/id"][:]) == sorted(VIDEOS)
        rows = slice(*store["label_aligned/video_offsets"][:2])
        values = store["label_aligned/features/egemaps"][rows]
        arousal = store["label_aligned/labels/arousal"][rows]
        assert json.loads(store.attrs["nan_cells"]) == {"label_aligned/egemaps": 1}
        assert store["audio/samples"].shape[0] == 3 * len(steps()[0]) * 2000
    expected = source[[str(i) for i in range(88)]].to_numpy(np.float32)
    row, column = NAN_CELL[1], int(NAN_CELL[2])
    assert np.isnan(expected[row, column]) and values[row, column] == 0
    expected[row, column] = 0
    np.testing.assert_allclose(values, expected, rtol=1e-6)
    assert values[:, 40:46].max() > 100  # formants kept at their scale, not normalised
    labels = pd.read_csv(label_dir(package, "wild", "arousal") / "11.csv")
    np.testing.assert_allclose(arousal, labels["value"].to_numpy(np.float32))


# Finding 2: a segment nobody speaks in.
def test_header_only_transcript_is_an_empty_text_and_counted(package: Path, tmp_path: Path,
                                                             caplog) -> None:
    with caplog.at_level(logging.INFO):
        path = prepare_one(package, tmp_path / "out", "topic")
    video, segment = SILENT_SEGMENT
    with h5py.File(path, "r") as store:
        ids = list(store["videos/id"][:])
        offsets = store["segments/video_offsets"][:]
        index = ids.index(video)
        segments = list(store["segments/segment_id"][offsets[index]:offsets[index + 1]])
        texts = [t.decode() for t in store["segments/text"][:]]
        assert json.loads(store.attrs["empty_transcripts"]) == 1
    assert texts[offsets[index] + segments.index(segment)] == ""
    assert texts[0] == "the car, really"  # CRLF and BOM transcript of video 11 read as usual
    assert "1 segment(s) without transcript words" in caplog.text


def test_header_only_unaligned_file_is_a_video_without_frames(package: Path,
                                                              tmp_path: Path) -> None:
    folder = feature_dir(package, "wild", "unaligned") / "egemaps"
    for video in VIDEOS:
        write(folder / f"{video}.csv", wild_egemaps(package, video).read_text())
    header = wild_egemaps(package).read_text().splitlines()[0]
    write(folder / "22.csv", header + "\r\n", crlf=True)
    with h5py.File(prepare_one(package, tmp_path / "out"), "r") as store:
        offsets = store["unaligned/egemaps/video_offsets"][:]
    assert list(np.diff(offsets)) == [16, 0, 16]


@pytest.mark.parametrize("kind", ["label", "aligned feature", "partition"])
def test_header_only_file_that_must_have_rows_is_named(package: Path, tmp_path: Path,
                                                       kind: str) -> None:
    path = {"label": label_dir(package, "wild", "valence") / "22.csv",
            "aligned feature": wild_egemaps(package, 22),
            "partition": package / PARTITION_FILE}[kind]
    write(path, path.read_text().splitlines()[0] + "\n")
    with pytest.raises(PackageError, match=rf"{path}: the file has a header but no rows"):
        prepare_one(package, tmp_path / "out")


# Finding 3: rows one cell short.
def test_file_cut_inside_its_last_row_names_the_line(package: Path, tmp_path: Path) -> None:
    path = wild_egemaps(package, 22)
    text = path.read_text()
    write(path, text[: text.rstrip("\n").rfind(",") - 3])  # cut inside the last row
    lines = len(text.splitlines())
    with pytest.raises(PackageError, match=rf"{path}: line {lines} has 89 cells, the header "
                                           "has 90"):
        prepare_one(package, tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


def test_rows_lacking_their_last_cell_name_the_first_line(package: Path, tmp_path: Path) -> None:
    path = wild_egemaps(package, 33)
    lines = path.read_text().splitlines()
    write(path, "\n".join([lines[0]] + [line[: line.rfind(",")] for line in lines[1:]]) + "\n",
          crlf=True)
    with pytest.raises(PackageError, match=rf"{path}: line 2 has 89 cells, the header has 90"):
        prepare_one(package, tmp_path / "out")


# Finding 4: repeated keys.
def test_duplicate_label_step_names_the_file_that_has_it(package: Path, tmp_path: Path) -> None:
    path = label_dir(package, "wild", "arousal") / "22.csv"
    lines = path.read_text().splitlines()
    write(path, "\n".join(lines[:5] + [lines[4]] + lines[5:]) + "\n")
    with pytest.raises(PackageError) as caught:
        prepare_one(package, tmp_path / "out")
    assert str(caught.value).startswith(f"{path}: line 6 repeats the key (timestamp=750, "
                                        "segment_id=1) of line 5")
    assert "valence" not in str(caught.value)


def test_duplicate_feature_step_names_the_feature_file(package: Path, tmp_path: Path) -> None:
    path = feature_dir(package, "topic", "egemaps_aligned") / "egemaps" / "11.csv"
    lines = path.read_text().splitlines()
    write(path, "\n".join(lines + [lines[3]]) + "\n")
    with pytest.raises(PackageError, match=rf"{path}: line {len(lines) + 1} repeats the key "
                                           r"\(timestamp=500, segment_id=1\) of line 4"):
        prepare_one(package, tmp_path / "out", "topic")


# Finding 6: stereo integer wavs.
@pytest.mark.parametrize("dtype", [np.int16, np.int32])
def test_stereo_integer_wav_is_scaled_then_mixed(tmp_path: Path, dtype) -> None:
    full = np.iinfo(dtype).max
    t = np.arange(1600) / 16000
    left = 0.5 * np.sin(2 * np.pi * 200 * t)
    right = 0.25 * np.sin(2 * np.pi * 300 * t)
    path = tmp_path / "stereo.wav"
    wavfile.write(path, 16000, (np.stack([left, right], axis=1) * full).astype(dtype))
    mono = read_audio(path, 16000)
    expected = np.round((left + right) / 2 * 32767)
    np.testing.assert_allclose(mono, expected, atol=2)
    assert np.abs(mono).max() < 0.4 * 32767


# Finding 7: full disk, killed processes.
def test_too_little_free_space_stops_before_writing(package: Path, tmp_path: Path,
                                                    monkeypatch) -> None:
    monkeypatch.setattr(store_writer, "_free_bytes", lambda folder: 10_000_000)
    out = tmp_path / "out"
    with pytest.raises(StoreError, match=r"wild\.h5: not enough free space in .*the store "
                                         r"needs about .* MB, 10\.0 MB free"):
        prepare_one(package, out)
    assert leftovers(out) == []


@pytest.mark.parametrize("task", ["wild", "topic", "trust"])
def test_expected_store_size_is_close_to_the_written_store(demo_package: Path,
                                                           demo_stores: dict[str, Path],
                                                           task: str) -> None:
    expected = expected_store_bytes(plan(demo_package, task, None), audio_rate=8000)
    assert 0.85 < demo_stores[task].stat().st_size / expected < 1.2


class _FullDisk:
    """A file that takes `room` bytes, then fails like a full disk."""

    def __init__(self, path, mode, buffering, room: int = 200_000) -> None:
        self.file = open(path, mode, buffering=buffering)  # noqa: SIM115 - closed in close()
        self.room = room

    def write(self, data) -> int:
        if self.file.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)


def test_disk_filling_up_while_writing_is_a_named_error(package: Path, tmp_path: Path,
                                                        monkeypatch) -> None:
    monkeypatch.setattr(store_writer, "open", _FullDisk, raising=False)
    out = tmp_path / "out"
    with pytest.raises(StoreError, match=r"wild\.h5: writing the store failed: No space left "
                                         "on device.*nothing was kept"):
        prepare_one(package, out, audio_rate=8000)
    assert leftovers(out) == []


@pytest.mark.slow
def test_file_size_limit_in_a_real_process_is_one_line_not_a_crash(package: Path,
                                                                   tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes the kernel fail writes past 300 kB (EFBIG), as a full disk does.
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))\n"
        "from muse.cli import main\n"
        f"sys.exit(main(['prepare', '--package', {str(package)!r}, '--out', "
        f"{str(tmp_path / 'out')!r}, '--tasks', 'wild']))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if "Traceback" in line
              or line.startswith("muse prepare: error")]
    assert errors == [f"muse prepare: error: {tmp_path / 'out' / 'wild.h5'}: writing the "
                      f"store failed: File too large; " + errors[0].split("too large; ")[1]]
    assert leftovers(tmp_path / "out") == []


def test_stale_temp_files_of_dead_processes_are_removed(package: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead = int(finished.stdout)
    running = out / f".wild.h5.{os.getppid()}.tmp"  # another prepare, still writing
    for name in (f".wild.h5.{dead}.tmp", f".topic.h5.{dead}.tmp", running.name):
        (out / name).write_bytes(b"\0" * 1000)
    (out / "notes.tmp").write_text("not a store's")
    prepare_one(package, out)
    assert leftovers(out) == sorted([running.name, "notes.tmp", "wild.h5"])


def start_slow_prepare(package: Path, out: Path) -> subprocess.Popen:
    """A prepare in another process that stops for a minute after its first video."""
    script = (
        "import time\n"
        "from muse.store.prepare import continuous, prepare\n"
        "real = continuous.prepare_video\n"
        "def slow(*args, **kwargs):\n"
        "    real(*args, **kwargs)\n"
        "    print('video written', flush=True)\n"
        "    time.sleep(60)\n"
        "continuous.prepare_video = slow\n"
        f"prepare({str(package)!r}, {str(out)!r}, tasks=['wild'], audio_rate=0)\n")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    assert process.stdout.readline().strip() == "video written"
    assert leftovers(out) == [f".wild.h5.{process.pid}.tmp"]
    return process


@pytest.mark.slow
def test_terminated_prepare_removes_its_temp_file(package: Path, tmp_path: Path) -> None:
    process = start_slow_prepare(package, tmp_path / "out")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert leftovers(tmp_path / "out") == []


@pytest.mark.slow
def test_temp_file_of_a_killed_prepare_is_removed_by_the_next(package: Path,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = start_slow_prepare(package, out)
    process.kill()
    process.wait(timeout=60)
    assert leftovers(out) == [f".wild.h5.{process.pid}.tmp"]  # SIGKILL leaves it
    prepare(package, out, tasks=["topic"], audio_rate=0)  # another store: removed all the same
    assert leftovers(out) == ["topic.h5"]


def test_an_error_inside_the_writer_removes_the_temp_file(package: Path, tmp_path: Path) -> None:
    write(wild_egemaps(package, 33), "timestamp,segment_id,0\n0,1,abc\n")
    with pytest.raises(PackageError):
        prepare_one(package, tmp_path / "out")
    assert leftovers(tmp_path / "out") == []


# Finding 11: errors a researcher can act on.
def test_non_numeric_label_cell_names_file_line_and_column(package: Path,
                                                           tmp_path: Path) -> None:
    path = label_dir(package, "wild", "valence") / "11.csv"
    lines = path.read_text().splitlines()
    assert lines[2].startswith("250,1,")
    lines[2] = "250,1,#VALUE!"
    write(path, "\n".join(lines) + "\n")
    with pytest.raises(PackageError, match=rf"{path}: line 3, column 'value': '#VALUE!' is not a "
                                           "number"):
        prepare_one(package, tmp_path / "out")


def test_non_integer_video_id_names_the_partition_line(package: Path, tmp_path: Path) -> None:
    path = package / PARTITION_FILE
    write(path, "Id,Proposal\n11,train\n22b,devel\n33,test\n")
    with pytest.raises(PackageError, match=rf"{path}: line 3, column 'Id': '22b' is not a "
                                           "number"):
        prepare_one(package, tmp_path / "out")


def test_bad_timestamp_cell_is_named_as_the_timestamp(package: Path, tmp_path: Path) -> None:
    path = wild_egemaps(package, 22)
    lines = path.read_text().splitlines()
    lines[4] = "12:00" + lines[4][lines[4].index(","):]
    write(path, "\n".join(lines) + "\n")
    with pytest.raises(PackageError, match=rf"{path}: line 5, column 'timestamp': '12:00' is "
                                           "not a number"):
        prepare_one(package, tmp_path / "out")


def test_truncated_wav_is_named(package: Path, tmp_path: Path) -> None:
    path = audio_file(package, "wild", 22, 2)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError, match=rf"{path}: truncated wav \(Reached EOF"):
        prepare_one(package, tmp_path / "out", audio_rate=8000)
    assert leftovers(tmp_path / "out") == []


def test_unknown_task_is_a_muse_error(package: Path, tmp_path: Path) -> None:
    with pytest.raises(MuseError, match=r"unknown task\(s\) \['foo'\]"):
        prepare(package, tmp_path / "out", tasks=["foo"])


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = muse_main(["prepare", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("case", ["unknown task", "out is a file", "read-only out"])
def test_cli_usage_errors_are_one_line(package: Path, tmp_path: Path, capsys, case: str) -> None:
    out, tasks, expected = tmp_path / "out", "wild", ""
    if case == "unknown task":
        tasks, expected = "foo", "unknown task(s) ['foo']"
    elif case == "out is a file":
        out.write_text("not a folder")
        expected = f"{out}: the output is a file"
    else:
        if not Path("/sys").is_dir():
            pytest.skip("needs /sys, a folder no process can write into")
        out, expected = Path("/sys"), "/sys: cannot write the store there ("
    code, err = run_cli(["--package", str(package), "--out", str(out), "--tasks", tasks,
                         "--no-audio"], capsys)
    lines = [line for line in err.splitlines() if line.startswith("muse prepare")]
    assert code == 1 and "Traceback" not in err
    assert len(lines) == 1 and expected in lines[0], err
