"""The paper's tables as sweeps (muse/sweeps/): every table composes from rows that exist, from any
working directory and from an installed copy of muse as the Docker image has it, and a tiny
sweep run as users run it (`python train.py -m sweep=...`, a subprocess) trains each job once in
its own folder, skips them all when run again, after a kill finishes only what is missing,
survives a failing job, and feeds `muse report` the table's rows and columns."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from composing import compose
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

ROOT = Path(__file__).parents[1]
TABLES = {
    "table2_wild": ("wild", {"lstm_att-lld", "lstm_att-deepspectrum", "lstm_att-egemaps",
                             "lstm_att-fasttext", "lstm_att-ge_ft", "lstm_att-xception",
                             "lstm_att-all_visual", "lstm_att-ge_ft_v", "e2e"}),
    "table2_trust": ("trust", {"lstm_att-lld", "lstm_att-deepspectrum", "lstm_att-egemaps",
                               "lstm_att-fasttext", "lstm_att-ge_ft", "lstm_att-xception",
                               "lstm_att-all_visual", "lstm_att-ge_ft_v", "e2e",
                               "e2e_multitask"}),
    "table3_topic": ("topic", {"mmt-ge_ft_au", "mmt-ge_ft_x", "albert",
                               "lstm_att-deepspectrum", "lstm_att-egemaps",
                               "lstm_att-fasttext", "lstm_att-ge_ft", "lstm_att-xception",
                               "lstm_att-all_visual", "lstm_att-ge_ft_v"}),
    "table4_emotion": ("topic", {"mmt-ge_ft_au", "mmt-ge_ft_x", "svm-egemaps",
                                 "svm-deepspectrum", "svm-vggface",
                                 "svm-fasttext", "svm-xception", "albert",
                                 "lstm_att-deepspectrum", "lstm_att-egemaps",
                                 "lstm_att-fasttext", "lstm_att-ge_ft", "lstm_att-xception",
                                 "lstm_att-all_visual", "lstm_att-ge_ft_v"}),
}
WILD_SWEEP = ["sweep=table2_wild", "row=lstm_att-egemaps,lstm_att-fasttext", "seed=1,2",
              "hydra.launcher.n_jobs=2", "trainer.max_epochs=1"]
WILD_JOBS = {f"row=lstm_att-{features},seed={seed},trainer.max_epochs=1"
             for features in ("egemaps", "fasttext") for seed in (1, 2)}
# A run's name: model, features, seed and the override that tells it apart (muse.runs.naming).
WILD_RUN = "lstm_att-{}-s{} max_epochs=1"


@pytest.mark.slow  # composes every job of every table: seconds of CPU
@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_table_sweeps_its_rows_over_three_seeds(table: str, monkeypatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the sweeps are found in the package, not the working directory
    task, rows = TABLES[table]
    cfg = compose(f"sweep={table}", hydra=True)
    params = cfg.hydra.sweeper.params
    assert {row.strip() for row in params.row.split(",")} == rows
    assert params.seed == "1,2,3"
    assert cfg.skip_finished is True and cfg.task.name == task
    assert "joblib" in cfg.hydra.launcher._target_ and cfg.hydra.launcher.n_jobs == 4
    assert f"/sweeps/{table}/" in OmegaConf.to_container(cfg.hydra.sweep)["dir"]
    for row in rows:
        job = compose(f"sweep={table}", f"row={row}")
        model, _, features = row.partition("-")
        assert job.model.name == model
        if features:
            assert job.features.name == features
        assert (ROOT / "conf" / "model" / f"{job.model.name}.yaml").is_file()
        assert job.features.names or job.features.name == "text"


COMPOSE_SWEEP = """
import json, sys
from hydra import compose, initialize_config_dir
import muse
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose("train", overrides=["sweep=table2_wild"], return_hydra_config=True)
print(json.dumps({"muse": muse.__file__, "task": cfg.task.name,
                  "rows": cfg.hydra.sweeper.params.row}))
"""


@pytest.mark.slow
def test_an_installed_copy_composes_every_sweep(tmp_path: Path) -> None:
    """As in the Docker image: muse installed (not editable), train.py and conf/ beside it,
    composed from a folder outside the repository."""
    source, site, app = tmp_path / "source", tmp_path / "site", tmp_path / "app"
    shutil.copytree(ROOT / "muse", source / "muse",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                    "--no-index", "--quiet", "--target", str(site), str(source)],
                   check=True, capture_output=True, cwd=tmp_path)
    shutil.copytree(ROOT / "conf", app / "conf")
    shutil.copy(ROOT / "train.py", app / "train.py")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", COMPOSE_SWEEP, str(app / "conf")], env=env,
                         cwd=tmp_path, capture_output=True, text=True, check=True)
    composed = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(composed["muse"]).is_relative_to(site)  # not the repository's muse
    assert composed["task"] == "wild"
    assert {row.strip() for row in composed["rows"].split(",")} == TABLES["table2_wild"][1]


def test_the_slurm_launcher_config_extends_submitit() -> None:
    slurm = yaml.safe_load((ROOT / "muse/sweeps/hydra/launcher/slurm.yaml").read_text())
    assert slurm["defaults"] == ["submitit_slurm"]
    assert {"partition", "timeout_min", "gpus_per_node", "array_parallelism"} <= set(slurm)


def test_a_skipped_job_returns_the_scores_its_run_logged() -> None:
    from muse.runs.evaluation import Evaluation
    from muse.runs.tracking import best_scores

    scores = {"devel": {"topic_score": 61.2, "emotion_score": 40.5,
                        "topic": {"f1": 62.0, "uar": 59.6, "score": 61.2},
                        "arousal": {"f1": 41.0, "uar": 39.1, "score": 40.4}},
              "test": None}
    logged = Evaluation("topic", scores=scores).flat_scores("best")
    # What else a run logs: per-epoch metrics, the epoch counter, evaluate.py's scores.
    logged |= {"epoch": 4.0, "devel/score": 50.8, "evaluate/devel/score": 50.8}
    run = SimpleNamespace(data=SimpleNamespace(metrics=logged))
    assert best_scores(run) == {"devel": scores["devel"]}


def run_sweep(root: Path, data_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """`python train.py -m ...` from the repository root, recording under `root`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MUSE_ROOT", "MUSE_DATA_DIR")}
    command = [sys.executable, "train.py", "-m", *overrides, f"data.dir={data_dir}",
               f"paths.root_dir={root}"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    done.output = done.stdout + done.stderr
    return done


def runs_of(root: Path, experiment: str) -> dict[str, object]:
    """{run name: run} of the experiment's active runs (there is one per name here)."""
    client = MlflowClient(f"sqlite:///{root}/logs/mlflow.db")
    found = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return {run.info.run_name: run for run in found}


def job_folders(root: Path, table: str) -> dict[Path, list[str]]:
    """{sweep folder: its job folders' names}, oldest sweep first."""
    sweeps = sorted((root / "logs" / "sweeps" / table).iterdir())
    return {sweep: sorted(job.name for job in sweep.iterdir() if (job / "job.json").is_file())
            for sweep in sweeps}


@pytest.fixture(scope="module")
def wild_sweeps(demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny table2_wild sweep (2 rows x 2 seeds, 2 parallel jobs) run three times: fresh,
    again, and again after one run was killed after its epoch and another was deleted."""
    root = tmp_path_factory.mktemp("sweeps")
    data_dir = demo_stores["wild"].parent
    steps = {"first": run_sweep(root, data_dir, *WILD_SWEEP)}
    steps["runs_first"] = runs_of(root, "MuSe-Wild")
    steps["second"] = run_sweep(root, data_dir, *WILD_SWEEP)
    steps["runs_second"] = runs_of(root, "MuSe-Wild")

    client = MlflowClient(f"sqlite:///{root}/logs/mlflow.db")
    killed, deleted = steps["runs_second"][WILD_RUN.format("egemaps", 1)], \
        steps["runs_second"][WILD_RUN.format("fasttext", 2)]
    # A job killed after its (only) epoch: a run still marked unfinished, and the last.ckpt
    # ModelCheckpoint wrote at that epoch's end (the run's one checkpoint is that epoch's).
    client.set_terminated(killed.info.run_id, "KILLED")
    checkpoints = root / "logs" / "checkpoints" / killed.info.run_id
    shutil.copy(next(checkpoints.glob("best-*.ckpt")), checkpoints / "last.ckpt")
    client.delete_run(deleted.info.run_id)
    steps.update(killed=killed.info.run_id, deleted=deleted.info.run_id)
    steps["third"] = run_sweep(root, data_dir, *WILD_SWEEP)
    steps["runs_third"] = runs_of(root, "MuSe-Wild")
    steps["root"] = root
    return steps


def test_a_sweep_trains_every_job_once_in_its_own_folder(wild_sweeps: dict) -> None:
    first = wild_sweeps["first"]
    assert first.returncode == 0, first.output[-3000:]
    runs = wild_sweeps["runs_first"]
    assert set(runs) == {WILD_RUN.format(f, s) for f in ("egemaps", "fasttext") for s in (1, 2)}
    assert {run.info.status for run in runs.values()} == {"FINISHED"}
    assert {run.data.tags["seed"] for run in runs.values()} == {"1", "2"}
    first_sweep, jobs = next(iter(job_folders(wild_sweeps["root"], "table2_wild").items()))
    assert set(jobs) == WILD_JOBS
    assert "4 jobs, 4 finished, 0 skipped, 0 failed" in first.stdout
    for name in WILD_JOBS:
        outcome = json.loads((first_sweep / name / "job.json").read_text())
        assert outcome["status"] == "finished" and outcome["run_id"] in {
            run.info.run_id for run in runs.values()}


def test_running_it_again_skips_every_job(wild_sweeps: dict) -> None:
    second = wild_sweeps["second"]
    assert second.returncode == 0, second.output[-3000:]
    before, after = wild_sweeps["runs_first"], wild_sweeps["runs_second"]
    assert {n: r.info.run_id for n, r in after.items()} == {
        n: r.info.run_id for n, r in before.items()}
    for name, run in before.items():
        assert f"skipping {name}: finished as run {run.info.run_id}" in second.output
    assert "4 jobs, 0 finished, 4 skipped, 0 failed" in second.stdout
    folders = job_folders(wild_sweeps["root"], "table2_wild")
    assert len(folders) == 3  # one folder per sweep, none shared
    assert all(set(jobs) == WILD_JOBS for jobs in folders.values())


def test_after_a_kill_only_what_is_missing_is_trained(wild_sweeps: dict) -> None:
    third = wild_sweeps["third"]
    assert third.returncode == 0, third.output[-3000:]
    assert "4 jobs, 2 finished, 2 skipped, 0 failed" in third.stdout
    runs = wild_sweeps["runs_third"]
    assert {run.info.status for run in runs.values()} == {"FINISHED"}
    # The killed run continued from its last checkpoint into the same MLflow run ...
    assert runs[WILD_RUN.format("egemaps", 1)].info.run_id == wild_sweeps["killed"]
    assert f"resuming MLflow run {wild_sweeps['killed']}" in third.output
    # ... the deleted one was trained again as a new run, and the others were left alone.
    assert runs[WILD_RUN.format("fasttext", 2)].info.run_id != wild_sweeps["deleted"]
    for name in (WILD_RUN.format("egemaps", 2), WILD_RUN.format("fasttext", 1)):
        assert runs[name].info.run_id == wild_sweeps["runs_first"][name].info.run_id


def test_the_report_has_the_swept_rows_over_both_seeds(wild_sweeps: dict, tmp_path: Path) -> None:
    from muse.report import report

    uri = f"sqlite:///{wild_sweeps['root']}/logs/mlflow.db"
    (wild,) = [t for t in report(uri, ["MuSe-Wild"], tmp_path / "report").tables
               if t.spec.name == "wild"]
    assert sorted((row.model, row.features, row.seeds) for row in wild.rows) == [
        ("lstm_att", "egemaps", ("1", "2")), ("lstm_att", "fasttext", ("1", "2"))]
    for row in wild.rows:
        for metric in ("arousal/ccc", "valence/ccc", "score"):
            assert row.cell("devel", metric).n == 2 and row.cell("devel", metric).sd is not None


def test_a_failing_job_does_not_stop_the_sweep(demo_stores: dict[str, Path],
                                               tmp_path: Path) -> None:
    # Table 4 on the basic launcher, with a row that cannot run on MuSe-Topic (End2You
    # multitask learns trustworthiness) next to two SVM rows.
    done = run_sweep(tmp_path, demo_stores["topic"].parent, "sweep=table4_emotion",
                     "row=svm-egemaps,e2e_multitask,svm-vggface", "seed=1,2",
                     "hydra/launcher=basic")
    assert done.returncode == 1, done.output[-3000:]
    assert "6 jobs, 4 finished, 0 skipped, 2 failed" in done.stdout
    for seed in (1, 2):
        assert f"  failed    row=e2e_multitask,seed={seed}: MuseError: " in done.stdout
    runs = runs_of(tmp_path, "MuSe-Topic")
    assert set(runs) == {f"svm-{f}-s{s}" for f in ("egemaps", "vggface") for s in (1, 2)}
    assert {run.info.status for run in runs.values()} == {"FINISHED"}

    from muse.report import report

    tables = {t.spec.name: t for t in report(f"sqlite:///{tmp_path}/logs/mlflow.db",
                                             ["MuSe-Topic"], tmp_path / "report").tables}
    emotions = tables["topic_emotions"]
    assert sorted((row.model, row.features, row.seeds) for row in emotions.rows) == [
        ("svm", "egemaps", ("1", "2")), ("svm", "vggface", ("1", "2"))]
    assert all(row.cell("devel", "emotion_score").n == 2 for row in emotions.rows)


@pytest.mark.parametrize(("table", "rows", "experiment", "report_table", "expected"), [
    ("table2_trust", "lstm_att-egemaps,e2e_multitask", "MuSe-Trust", "trust",
     [("e2e_multitask", "vg_ft"), ("lstm_att", "egemaps")]),
    ("table3_topic", "mmt-ge_ft_au", "MuSe-Topic", "topic_topics", [("mmt", "ge_ft_au")]),
])
def test_a_tiny_table_sweep_reports_its_rows(demo_stores: dict[str, Path], tmp_path: Path,
                                             table: str, rows: str, experiment: str,
                                             report_table: str, expected: list) -> None:
    """The tables not swept above, tiny (one epoch, 2 seeds): every job finishes, the report
    has their rows over both seeds (End2You on raw audio, MMT one model per target)."""
    task = "trust" if table.startswith("table2") else "topic"
    done = run_sweep(tmp_path, demo_stores[task].parent, f"sweep={table}", f"row={rows}",
                     "seed=1,2", "trainer.max_epochs=1", "hydra.launcher.n_jobs=2")
    jobs = 2 * len(rows.split(","))
    assert done.returncode == 0, done.output[-3000:]
    assert f"{jobs} jobs, {jobs} finished, 0 skipped, 0 failed" in done.stdout

    from muse.report import report

    tables = {t.spec.name: t for t in report(f"sqlite:///{tmp_path}/logs/mlflow.db",
                                             [experiment], tmp_path / "report").tables}
    found = tables[report_table]
    assert sorted((row.model, row.features) for row in found.rows) == expected
    assert all(row.seeds == ("1", "2") for row in found.rows)
