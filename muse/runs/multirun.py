"""Multiruns that survive their jobs: the outcome of every job, and a summary at the end.

Hydra's launchers (basic, joblib, submitit) run each job through `hydra.core.utils.run_job`,
which catches the job's exception into its `JobReturn`; once a batch is done, the basic sweeper
raises the first of them again, which would end the multirun without a word about the others.
`SweepSummary`, a Hydra callback (conf/hydra/default.yaml), instead:

* before any job starts, opens the MLflow store, so that parallel jobs do not race to create
  its tables (the data directory and the experiments are guarded where they are made:
  `muse.store.sources.store_for`, `muse.runs.tracking.ensure_experiment`);
* after each job, where the job ran (a joblib worker, a SLURM node), writes the job's outcome
  to `job.json` in the job's folder: finished, skipped (its configuration had finished before:
  `skip_finished`) or failed, with its overrides, run and devel score, or its error; a failed
  job is logged with its traceback and its return marked handled, so the sweep goes on;
* at the end, in the process that launched the sweep, reads every `job.json` of the sweep
  folder and prints the summary; the exit status is 1 when a job failed.
"""

from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from muse.runs.result import RESULT_FILE, read_result

log = logging.getLogger(__name__)

JOB_FILE = "job.json"
STATUSES = ("finished", "skipped", "failed")


def job_outcome(job: str, job_return: JobReturn, output_dir: Path) -> dict[str, Any]:
    """What `job.json` says about one job (`job`: its overrides as its folder is named)."""
    outcome: dict[str, Any] = {"job": job, "overrides": list(job_return.overrides or []),
                               "folder": str(output_dir)}
    if job_return.status == JobStatus.FAILED:
        error = job_return._return_value  # the property would raise it again
        first_line = next(iter(str(error).splitlines()), "")  # the whole traceback is logged
        return outcome | {"status": "failed", "error": f"{type(error).__name__}: {first_line}"}
    result_file = output_dir / RESULT_FILE
    result = read_result(result_file) if result_file.is_file() else None
    return outcome | {"status": "skipped" if result and result.skipped else "finished",
                      "run_id": result.run_id if result else None,
                      "score": job_return._return_value}


def summary(outcomes: list[dict[str, Any]], sweep_dir: Path) -> str:
    """The lines a sweep ends with: counts, then one line per job, failures last."""
    counts = {status: sum(o["status"] == status for o in outcomes) for status in STATUSES}
    lines = ["", f"Sweep {sweep_dir}: {len(outcomes)} jobs, "
             + ", ".join(f"{n} {status}" for status, n in counts.items())]
    for outcome in sorted(outcomes, key=lambda o: STATUSES.index(o["status"])):
        if outcome["status"] == "failed":
            lines.append(f"  failed    {outcome['job']}: {outcome['error']}")
        else:
            score = "" if outcome["score"] is None else f"devel score {outcome['score']}, "
            lines.append(f"  {outcome['status']:<9} {outcome['job']}: {score}"
                         f"run {outcome['run_id']}")
    if counts["failed"]:
        lines.append("Each job's log is train.log in its folder; the same command runs the failed "
                     "and missing jobs again and skips the finished ones.")
    return "\n".join(lines)


class SweepSummary(Callback):
    """Opens the tracking store, records each job's outcome, prints the summary (module doc)."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mlflow.tracking import MlflowClient

        # The paths interpolate ${hydra:...}, which Hydra sets for jobs but not yet here.
        HydraConfig.instance().set_config(config)
        MlflowClient(config.logger.tracking_uri).search_experiments(max_results=1)

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        output_dir = Path(config.hydra.runtime.output_dir)
        outcome = job_outcome(config.hydra.job.override_dirname, job_return, output_dir)
        (output_dir / JOB_FILE).write_text(json.dumps(outcome, indent=2))
        if job_return.status == JobStatus.FAILED:
            error = job_return._return_value
            log.error("job %s failed:\n%s", outcome["job"],
                      "".join(traceback.format_exception(error)))
            # Handled: the sweeper would raise it again and end the multirun here.
            job_return.status = JobStatus.COMPLETED
            job_return.return_value = None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        outcomes = [json.loads(path.read_text()) for path in sorted(sweep_dir.rglob(JOB_FILE))]
        print(summary(outcomes, sweep_dir), flush=True)
        if any(outcome["status"] == "failed" for outcome in outcomes):
            raise SystemExit(1)
