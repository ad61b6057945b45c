"""What `train(cfg)` gives back: a typed run result, and the file a sweep's job keeps it in.

Every kind of run (Lightning, scikit-learn, a finished one skipped by `skip_finished`) returns a
`RunResult`; train.py writes it to the job's `result.json` for the sweep summary, the Optuna
search reads its objective, the terminal summary prints it. A `fast_dev_run` records nothing
and returns a `FastDevRun` with the metrics Lightning logged.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from muse.tasks import TASKS

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class RunResult:
    """A recorded run: where it is, its best checkpoint(s), its official devel/test scores.

    `devel` and `test` are the scorer's output for the best epoch, None for a partition not
    scored (masked labels, or a scored target not learned). `chosen`: settings the run chose
    itself, e.g. the SVM's `{"C": {target: C}}`.
    """

    run_id: str
    tracking_uri: str
    experiment: str
    best_checkpoint: str
    predictions: str  # the folder (or artifact URI) of the submission-layout CSVs
    devel: dict | None = None
    test: dict | None = None
    synthetic_demo: bool = False
    skipped: bool = False  # FINISHED before with this configuration: not trained again
    chosen: dict = field(default_factory=dict)

    fast_dev_run = False

    def scores(self, partition: str) -> dict | None:
        return {"devel": self.devel, "test": self.test}[partition]

    def objective(self, task: str) -> float | None:
        """The value sweepers and searches optimise: the devel score as the task monitors it
        (`muse.tasks.Task.objective`); None unscored."""
        return TASKS[task].objective(self.devel)

    def write(self, output_dir: str | Path) -> Path:
        """`result.json` in a job's folder, for the sweep's summary."""
        return _write(output_dir, dataclasses.asdict(self))


@dataclass(frozen=True)
class FastDevRun:
    """A `trainer.fast_dev_run`: a batch of each loop, nothing recorded; its logged metrics."""

    metrics: dict

    fast_dev_run = True
    run_id = None
    skipped = False

    def objective(self, task: str) -> None:
        return None

    def write(self, output_dir: str | Path) -> Path:
        return _write(output_dir, {"fast_dev_run": True, "metrics": self.metrics})


def _write(output_dir: str | Path, fields: dict) -> Path:
    path = Path(output_dir) / RESULT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fields, indent=2, default=str))  # tensors of a fast_dev_run
    return path


def read_result(path: str | Path) -> RunResult | FastDevRun:
    """A `result.json` written by `write`."""
    fields = json.loads(Path(path).read_text())
    if fields.get("fast_dev_run"):
        return FastDevRun(fields["metrics"])
    return RunResult(**fields)
