"""`muse score` on a run's submission file, as a user runs it: the tests' one way to do it."""

from __future__ import annotations

import json
from pathlib import Path

from muse.cli import main as muse_main
from muse.package.layout import aggregated_file


def score_with_cli(task: str, predictions: Path, package: Path, capsys) -> dict:
    """The official scores `muse score` prints for `predictions` against the package's test
    labels; fails unless the command exits 0. Earlier captured output is dropped first."""
    capsys.readouterr()
    code = muse_main(["score", "--task", task, "--predictions", str(predictions),
                      "--labels", str(aggregated_file(package, task, "test"))])
    assert code == 0
    return json.loads(capsys.readouterr().out)
