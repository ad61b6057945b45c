"""`muse prepare --check`: what prepare would see, from headers and samples, writing nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from handmade_package import write_package

from muse.cli import main as muse_main
from muse.package.layout import label_dir

pytestmark = pytest.mark.slow  # every test checks a package through `muse prepare --check`


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(Path(folder) / name): (os.stat(Path(folder) / name).st_size,
                                       os.stat(Path(folder) / name).st_mtime_ns)
            for folder, _, names in os.walk(root) for name in names}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    package = write_package(tmp_path_factory.mktemp("check") / "muse2020")
    (label_dir(package, "topic", "topic") / "33.csv").unlink()  # a test video without labels
    before = snapshot(package.parent)
    code = muse_main(["prepare", "--package", str(package), "--check"])
    assert code == 0
    return package, before


def test_check_reports_what_prepare_will_read(report, capsys) -> None:
    package, _ = report
    assert muse_main(["prepare", "--package", str(package), "--check"]) == 0
    text = capsys.readouterr().out
    wild, topic, trust = (text.split(f"\n{name} (")[1] for name in ("wild", "topic", "trust"))
    wild, topic = wild.split("\ntopic (")[0], topic.split("\ntrust (")[0]
    assert f"{package / 'metadata' / 'partition.csv'}: 3 videos" in text
    assert "videos: train 1, devel 1, test 1" in wild
    assert "label_aligned/egemaps: 88 dims, 3 files" in wild
    assert "unaligned: none" in wild
    assert "arousal: timestamp,value,segment_id (3 files)" in wild
    assert "valence: timestamp,segment_id,value (3 files)" in wild
    assert "audio: 6 wav files (16000 Hz, 1 channel(s), int16" in wild
    assert "kept without label files (masked test labels): [33]" in topic
    assert "egemaps_aligned/egemaps: 88 dims, 3 files" in topic
    assert "fasttext_aligned: none" in topic
    assert "transcripts: 6 files, 1 header-only (empty text)" in topic
    assert "audio: none" in topic
    # conf/features/ge_ft_au.yaml (mmt) and ge_ft.yaml (lstm_att) need fastText; svm's eGeMAPS
    # and albert's transcripts are there.
    models = topic.split("models whose default inputs are absent")[1].split("\n")[1:]
    absent = {line.split(":")[0].strip(): line.split(":")[1].strip() for line in models
              if line.startswith("    ")}
    assert absent == {"lstm_att": "fasttext", "mmt": "fasttext, au", "e2e": "vggface, fasttext, "
                      "audio", "e2e_multitask": "vggface, fasttext, audio"}
    assert "! sub-challenge folder not found" in trust
    quirks = text.split("quirks prepare will tolerate:")[1]
    assert "1 duplicate partition row(s), dropped" in quirks
    assert "NaN cells in the sampled rows, imputed with 0: {'label_aligned/egemaps': 1}" in quirks
    assert "1 header-only transcript(s), read as empty text" in quirks
    assert "file(s) with CRLF line endings" in quirks and "byte-order mark" in quirks


def test_check_writes_nothing(report) -> None:
    package, before = report
    assert snapshot(package.parent) == before


def test_check_needs_no_out_but_prepare_does(report, capsys) -> None:
    package, _ = report
    with pytest.raises(SystemExit, match="give --out DIR"):
        muse_main(["prepare", "--package", str(package)])
