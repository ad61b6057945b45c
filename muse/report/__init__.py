"""`muse report`: the paper's tables from the MLflow runs, as files and as an MLflow run.

runs (MLflow -> one row per finished run) -> tables (mean ± sd over seeds per system and
feature set, best marked, the paper's published values beside; the MuSe-Topic ranking) ->
render (markdown, CSV, optional HTML) and figures (PNG per table) -> record (a run of the
`muse-report` experiment with those files). Files are written to a temporary folder that
replaces `--out` only once everything, the MLflow run included, succeeded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from muse.errors import MuseError
from muse.report.figures import score_figure
from muse.report.paper import NOTES
from muse.report.record import log_report
from muse.report.render import Meta, html_page, markdown, ranking_frame, table_frame
from muse.report.runs import EXPERIMENTS, load_runs
from muse.report.tables import Ranking, Table, build_rankings, build_tables
from muse.runs.tracking import default_tracking_uri, root_dir

log = logging.getLogger(__name__)

FORMATS = ("md", "csv", "html")
MANIFEST = "report.json"  # also what marks a folder as a report `--out` may replace


@dataclass(frozen=True)
class ReportResult:
    out: Path
    files: list[str]
    run_id: str
    tracking_uri: str
    tables: list[Table]
    rankings: list[Ranking]


def default_out() -> Path:
    return root_dir() / "logs" / "report"


def check_formats(formats: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = [name for name in formats if name not in FORMATS]
    if unknown or not formats:
        raise MuseError(f"--format {','.join(formats)}: choose from {','.join(FORMATS)} "
                        f"(unknown: {','.join(unknown) or 'none given'})")
    return tuple(dict.fromkeys(formats))


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / MANIFEST).is_file())):
        raise MuseError(f"--out {out}: exists and is not a muse report folder; "
                        "choose a new or empty folder")


def _write(folder: Path, tables: list[Table], rankings: list[Ranking], meta: Meta,
           formats: tuple[str, ...], run_ids: list[str]) -> list[str]:
    if "md" in formats:
        (folder / "report.md").write_text(markdown(tables, rankings, meta, NOTES))
    if "html" in formats:
        (folder / "report.html").write_text(html_page(tables, rankings, meta, NOTES))
    if "csv" in formats:
        for table in tables:
            table_frame(table).to_csv(folder / f"{table.spec.name}.csv", index=False)
        if rankings:
            ranking_frame(rankings).to_csv(folder / "topic_ranking.csv", index=False)
    for table in tables:
        score_figure(table).savefig(folder / f"{table.spec.name}.png", dpi=120)
    files = sorted([*(path.name for path in folder.iterdir()), MANIFEST])
    manifest = {"created": meta.created, "tracking_uri": meta.tracking_uri,
                "experiments": list(meta.experiments), "runs": run_ids, "files": files}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return files


def _replace(new: Path, out: Path) -> None:
    """Move the finished folder to `out`; a previous report there goes only after that."""
    if not out.exists():
        new.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    out.rename(old)
    new.rename(out)
    shutil.rmtree(old)


def report(tracking_uri: str | None = None, experiments: list[str] | None = None,
           out: Path | None = None, formats: tuple[str, ...] = ("md", "csv")) -> ReportResult:
    """Read the finished runs, write the tables and figures to `out`, record a report run."""
    formats = check_formats(formats)
    tracking_uri = tracking_uri or default_tracking_uri()
    out = Path(out) if out is not None else default_out()
    _check_out(out)
    runs = load_runs(tracking_uri, experiments)
    tables, rankings = build_tables(runs), build_rankings(runs)
    now = datetime.now()
    read = set(runs["experiment"])
    meta = Meta(now.strftime("%Y-%m-%d %H:%M:%S"), tracking_uri,
                tuple(name for name in experiments or EXPERIMENTS if name in read), len(runs))
    out.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    folder.chmod(0o755)  # mkdtemp's private mode would stay with the report folder
    try:
        files = _write(folder, tables, rankings, meta, formats, list(runs["run_id"]))
        run_id = log_report(
            tracking_uri, folder, tables, markdown(tables, rankings, meta, NOTES, images=False),
            {"experiments": ",".join(meta.experiments), "runs": str(meta.runs),
             "formats": ",".join(formats)},
            run_name=f"report-{now:%Y-%m-%d_%H-%M-%S}", report_dir=out)
        _replace(folder, out)
    finally:
        if folder.exists():
            shutil.rmtree(folder)
    log.info("report of %d run(s) written to %s, recorded as run %s", meta.runs, out, run_id)
    return ReportResult(out, files, run_id, tracking_uri, tables, rankings)
