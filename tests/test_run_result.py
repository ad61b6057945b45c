"""muse.runs.result: the typed result of a run, its objective and its job file."""

from __future__ import annotations

import pytest

from muse.runs.result import FastDevRun, RunResult, read_result


def result(devel: dict | None) -> RunResult:
    return RunResult("r", "sqlite:///x", "MuSe", "c", "p", devel=devel)


def test_objective_reads_the_official_scores():
    assert result({"score": 0.41, "arousal": {}}).objective("wild") == 0.41
    topic = result({"emotion_score": 40.5, "topic_score": 61.2})
    assert topic.objective("topic") == pytest.approx((61.2 + 40.5) / 2)
    assert result({"emotion_score": 40.5}).objective("topic") is None
    assert result(None).objective("trust") is None


def test_a_result_file_reads_back(tmp_path):
    written = RunResult("r", "sqlite:///x", "MuSe", "c", "p", devel={"score": 0.5},
                        chosen={"C": {"arousal": 0.1}})
    assert read_result(written.write(tmp_path)) == written
    assert read_result(FastDevRun({"devel/score": 0.2}).write(tmp_path)).fast_dev_run
