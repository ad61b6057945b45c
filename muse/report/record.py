"""The report as an MLflow run, so the paper's comparison is also in the UI.

Each `muse report` is one run of the experiment `muse-report`: the report's files as
artifacts, the markdown tables as the run's description (shown on the run page), the best
mean of every table column as a metric `<table>/<partition>/<metric>`, and as params the
experiments read and how many runs went in.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

from muse.report.runs import sqlite_path
from muse.report.tables import Table
from muse.tasks import EVALUATED_PARTITIONS

EXPERIMENT = "muse-report"
NOTE_TAG = "mlflow.note.content"  # the run description the MLflow UI renders as markdown
REPORT_DIR_TAG = "muse.report_dir"


def _experiment_id(client: MlflowClient, tracking_uri: str) -> str:
    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    database = sqlite_path(tracking_uri)
    # Beside the training runs' artifacts (conf/logger/mlflow.yaml), not ./mlruns of the cwd.
    location = None if database is None else str((database.parent / "artifacts").resolve())
    return client.create_experiment(EXPERIMENT, artifact_location=location)


def best_metrics(tables: list[Table]) -> dict[str, float]:
    """{"<table>/<partition>/<metric>": best mean} over every non-empty column."""
    found = {}
    for table in tables:
        for column in table.spec.columns:
            for partition in EVALUATED_PARTITIONS:
                means = [row.cell(partition, column.metric).mean for row in table.rows
                         if row.cell(partition, column.metric).n]
                if means:
                    found[f"{table.spec.name}/{partition}/{column.metric}"] = max(means)
    return found


def log_report(tracking_uri: str, folder: Path, tables: list[Table], note: str,
               params: dict[str, str], run_name: str, report_dir: Path) -> str:
    """Record one report run with `folder`'s files as artifacts; returns its run id."""
    client = MlflowClient(tracking_uri)
    run = client.create_run(_experiment_id(client, tracking_uri), run_name=run_name,
                            tags={REPORT_DIR_TAG: str(report_dir.resolve())})
    run_id = run.info.run_id
    try:
        for key, value in params.items():
            client.log_param(run_id, key, value)
        for key, value in best_metrics(tables).items():
            client.log_metric(run_id, key, value)
        if len(note) > MAX_TAG_VAL_LENGTH:
            note = (f"The report's tables are too long for this description: see report.md "
                    f"in the artifacts or {report_dir.resolve()}.")
        client.set_tag(run_id, NOTE_TAG, note)
        client.log_artifacts(run_id, str(folder))
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id, "FINISHED")
    return run_id
