"""`muse report`: MLflow runs -> the paper's tables (md, CSV, HTML, PNG) and a report run."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from composing import compose
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from muse.cli import main as muse_main
from muse.errors import MuseError
from muse.report import report
from muse.report.figures import score_figure
from muse.report.record import EXPERIMENT, NOTE_TAG
from muse.runs.train import train

pytestmark = pytest.mark.slow  # every test reads an MLflow store of 40 runs (seconds to write)

SD_OF_TWO = math.sqrt(2) * 0.05  # sample sd of two values 0.1 apart
TASK_PARAMS = {
    "wild": ('["arousal", "valence"]', '["arousal", "valence"]'),
    "trust": ('["trustworthiness"]', '["trustworthiness"]'),
    "topic": ('["topic", "arousal", "valence"]', '["topic", "arousal", "valence"]'),
}
FEATURES = {
    "ge_ft": ("Ge + FT", ["egemaps", "fasttext"]),
    "vg_ft": ("VG + FT", ["vggface", "fasttext"]),
    "fasttext": ("FT", ["fasttext"]),
    "ge_ft_au": ("Ge + FT + AU", ["egemaps", "fasttext", "au"]),
}
EXPERIMENTS = {"wild": "MuSe-Wild", "trust": "MuSe-Trust", "topic": "MuSe-Topic"}


class Store:
    """A temporary MLflow store with runs shaped like the ones train() records."""

    def __init__(self, root: Path, empty_db: Path) -> None:
        self.uri = f"sqlite:///{shutil.copy(empty_db, root / 'mlflow.db')}"
        self.client = MlflowClient(self.uri)
        self.root, self.clock = root, 1_700_000_000_000

    def experiment(self, task: str) -> str:
        found = self.client.get_experiment_by_name(EXPERIMENTS[task])
        if found is not None:
            return found.experiment_id
        return self.client.create_experiment(EXPERIMENTS[task],
                                             artifact_location=str(self.root / "artifacts"))

    def run(self, task: str, model: str, features: str, seed: int, scores: dict[str, float],
            status: str = "FINISHED", model_targets: list[str] | None = None) -> str:
        self.clock += 1000
        label, names = FEATURES[features]
        run = self.client.create_run(
            self.experiment(task), start_time=self.clock, run_name=f"{model}-{features}-s{seed}",
            tags={"task": task, "model": model, "features": features, "seed": str(seed),
                  "muse.config_hash": f"{task}{model}{features}{seed}"})
        run_id = run.info.run_id
        targets, scored = TASK_PARAMS[task]
        params = {"task.name": task, "task.targets": targets, "task.scored": scored,
                  "model.name": model, "features.name": features, "features.label": label,
                  "features.names": json.dumps(names),
                  "model.targets": json.dumps(model_targets) if model_targets else "None"}
        self.client.log_batch(
            run_id, params=[Param(key, value) for key, value in params.items()],
            metrics=[Metric(f"best/{key}", value, self.clock, 0) for key, value in scores.items()])
        self.client.set_terminated(run_id, status)
        return run_id


def wild_scores(arousal: float, valence: float, test_shift: float = 0.01) -> dict[str, float]:
    scores = {}
    for partition, shift in (("devel", 0.0), ("test", test_shift)):
        a, v = arousal + shift, valence + shift
        scores |= {f"{partition}/arousal/ccc": a, f"{partition}/valence/ccc": v,
                   f"{partition}/score": (a + v) / 2}
    return scores


def topic_scores(emotion: float, topic: float) -> dict[str, float]:
    scores = {}
    for partition in ("devel", "test"):
        scores |= {f"{partition}/topic/f1": topic, f"{partition}/topic/uar": topic,
                   f"{partition}/topic/score": topic, f"{partition}/topic_score": topic,
                   f"{partition}/arousal/score": emotion, f"{partition}/valence/score": emotion,
                   f"{partition}/emotion_score": emotion}
    return scores


@pytest.fixture(scope="module")
def store(empty_tracking_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """2 systems x 2 feature sets x 2 seeds per task, plus runs that must not count."""
    store = Store(tmp_path_factory.mktemp("mlflow"), empty_tracking_db)
    # MuSe-Wild; each pair of seeds is 0.1 apart on every metric it varies.
    store.run("wild", "lstm_att", "ge_ft", 1, wild_scores(0.0, 0.0))  # older duplicate of seed 1
    wild = {("lstm_att", "ge_ft"): [(0.30, 0.10), (0.40, 0.20)],
            ("lstm_att", "vg_ft"): [(0.10, 0.35), (0.10, 0.45)],
            ("e2e", "ge_ft"): [(0.50, 0.00), (0.60, 0.10)],
            ("e2e", "vg_ft"): [(0.20, 0.20), (0.20, 0.20)]}
    for (model, features), pairs in wild.items():
        for seed, (arousal, valence) in enumerate(pairs, start=1):
            store.run("wild", model, features, seed, wild_scores(arousal, valence))
    store.run("wild", "lstm_att", "ge_ft", 3, wild_scores(0.99, 0.99), status="FAILED")
    store.run("wild", "lstm_att", "ge_ft", 4, wild_scores(0.99, 0.99), status="KILLED")
    # MuSe-Trust with masked test labels: devel scores only.
    for seed, value in ((1, 0.20), (2, 0.30)):
        store.run("trust", "lstm_att", "ge_ft", seed,
                  {"devel/trustworthiness/ccc": value, "devel/score": value})
        store.run("trust", "e2e_multitask", "vg_ft", seed,
                  {"devel/trustworthiness/ccc": value + 0.1, "devel/score": value + 0.1},
                  model_targets=["trustworthiness", "arousal", "valence"])
    # MuSe-Topic: mean ranks tie at 2 for three rows; the topic rank breaks the tie.
    topic = {("lstm_att", "ge_ft"): (50.0, 30.0), ("lstm_att", "fasttext"): (40.0, 40.0),
             ("mmt", "ge_ft"): (30.0, 50.0), ("mmt", "fasttext"): (20.0, 20.0)}
    for (model, features), (emotion, topic_score) in topic.items():
        for seed, delta in ((1, -1.0), (2, 1.0)):
            parent = store.run("topic", model, features, seed,
                               topic_scores(emotion + delta, topic_score + delta))
    for seed in (1, 2):  # an MMT trained on topics alone: no emotion score, so not ranked
        store.run("topic", "mmt", "ge_ft_au", seed,
                  {"devel/topic/f1": 60.0, "devel/topic/uar": 60.0, "devel/topic/score": 60.0,
                   "devel/topic_score": 60.0}, model_targets=["topic"])
    # One target's model of a per-target run, newer than its parent (MMT on FT, seed 2), which
    # holds the combined scores: counted, it would replace the parent's.
    child = store.client.create_run(store.experiment("topic"), start_time=store.clock + 1000,
                                    tags={"mlflow.parentRunId": parent, "muse.target": "topic",
                                          "task": "topic", "model": "mmt",
                                          "features": "fasttext", "seed": "2"})
    store.client.log_metric(child.info.run_id, "best/devel/topic_score", 99.0)
    store.client.set_terminated(child.info.run_id, "FINISHED")
    return store


@pytest.fixture(scope="module")
def made(store: Store, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("reports") / "report"
    return report(store.uri, out=out, formats=("md", "csv", "html"))


def row(table, system: str, features_label: str):
    return next(r for r in table.rows if (r.system, r.features_label) == (system, features_label))


def table(made, name: str):
    return next(t for t in made.tables if t.spec.name == name)


def test_rows_are_systems_by_feature_sets(made) -> None:
    assert [t.spec.name for t in made.tables] == ["wild", "trust", "topic_topics",
                                                  "topic_emotions"]
    assert [(r.system, r.features_label, r.seeds) for r in table(made, "wild").rows] == [
        ("LSTM + Self-Att", "Ge + FT", ("1", "2")), ("LSTM + Self-Att", "VG + FT", ("1", "2")),
        ("End2You", "Ge + FT", ("1", "2")), ("End2You", "VG + FT", ("1", "2"))]
    assert [r.system for r in table(made, "trust").rows] == [
        "LSTM + Self-Att", "End2You-Multitask [trustworthiness+arousal+valence]"]
    # The topic-only MMT is a system of its own, in the topic table only.
    assert "MMT [topic]" in [r.system for r in table(made, "topic_topics").rows]
    assert "MMT [topic]" not in [r.system for r in table(made, "topic_emotions").rows]


def test_cells_are_mean_and_sample_sd_over_seeds_ignoring_failed_and_older_runs(made) -> None:
    lstm = row(table(made, "wild"), "LSTM + Self-Att", "Ge + FT")
    arousal = lstm.cell("devel", "arousal/ccc")
    assert arousal.values == pytest.approx((0.30, 0.40))  # not the FAILED/KILLED 0.99s
    assert arousal.n == 2 and arousal.mean == pytest.approx(0.35)
    assert arousal.sd == pytest.approx(SD_OF_TWO)
    assert lstm.cell("test", "score").mean == pytest.approx((0.31 + 0.11 + 0.41 + 0.21) / 4)
    constant = row(table(made, "wild"), "End2You", "VG + FT").cell("devel", "score")
    assert constant.mean == pytest.approx(0.20) and constant.sd == 0.0


def test_the_best_mean_of_each_column_is_marked(made) -> None:
    wild = table(made, "wild")
    best = {metric: [(r.system, r.features_label) for r in wild.rows
                     if wild.is_best(r, "devel", metric)]
            for metric in ("arousal/ccc", "valence/ccc", "score")}
    assert best == {"arousal/ccc": [("End2You", "Ge + FT")],
                    "valence/ccc": [("LSTM + Self-Att", "VG + FT")],
                    # 0.30 for End2You on Ge + FT against 0.25, 0.25 and 0.20
                    "score": [("End2You", "Ge + FT")]}
    markdown = (made.out / "report.md").read_text()
    assert "| End2You | Ge + FT | 2 | **0.5500 ± 0.0707** |" in markdown
    assert "| LSTM + Self-Att | Ge + FT | 2 | 0.3500 ± 0.0707 |" in markdown
    assert "<strong>0.5500 ± 0.0707</strong>" in (made.out / "report.html").read_text()


def test_csv_has_separate_mean_sd_n_best_and_paper_columns(made) -> None:
    frame = pd.read_csv(made.out / "wild.csv")
    assert list(frame.columns[:7]) == ["system", "model", "targets", "features",
                                       "features_label", "n_seeds", "seeds"]
    lstm = frame[(frame.model == "lstm_att") & (frame.features == "ge_ft")].iloc[0]
    assert lstm["n_seeds"] == 2 and lstm["seeds"] == "1;2"
    assert lstm["devel_score_mean"] == pytest.approx(0.25)
    assert lstm["devel_score_sd"] == pytest.approx(SD_OF_TWO, abs=1e-6)
    assert lstm["devel_score_n"] == 2 and not lstm["devel_score_best"]
    # Table 2 of the paper, LSTM + Self-Att on Ge + FT: combined .0947 / .0690.
    assert (lstm["paper_devel_score"], lstm["paper_test_score"]) == (0.0947, 0.0690)
    assert (lstm["paper_devel_arousal_ccc"], lstm["paper_test_valence_ccc"]) == (0.1375, 0.0361)
    e2e = frame[(frame.model == "e2e") & (frame.features == "vg_ft")].iloc[0]
    assert e2e["paper_test_score"] == 0.2568  # the paper's MuSe-Wild baseline
    # No published value for these rows: empty, not zero.
    unpublished = frame[(frame.model + frame.features).isin(["e2ege_ft", "lstm_attvg_ft"])]
    assert unpublished[["paper_devel_score", "paper_test_score"]].isna().all().all()
    assert frame.loc[frame.devel_score_best, "model"].tolist() == ["e2e"]


def test_masked_test_labels_leave_test_columns_empty(made) -> None:
    frame = pd.read_csv(made.out / "trust.csv")
    assert frame["test_trustworthiness_ccc_mean"].isna().all()
    assert (frame["test_trustworthiness_ccc_n"] == 0).all()
    assert not frame["test_trustworthiness_ccc_best"].any()
    assert frame["devel_trustworthiness_ccc_mean"].tolist() == pytest.approx([0.25, 0.35])
    # The multitask End2You row meets the paper's End2You-Multitask (.3264 / .4119).
    multitask = frame[frame.model == "e2e_multitask"].iloc[0]
    assert multitask["targets"] == "trustworthiness+arousal+valence"
    assert (multitask["paper_devel_trustworthiness_ccc"],
            multitask["paper_test_trustworthiness_ccc"]) == (0.3264, 0.4119)
    line = next(line for line in (made.out / "report.md").read_text().splitlines()
                if line.startswith("| End2You-Multitask"))
    assert line == ("| End2You-Multitask [trustworthiness+arousal+valence] | VG + FT | 2 | "
                    "**0.3500 ± 0.0707** |  | 0.3264 / 0.4119 |")


def test_topic_ranking_breaks_a_mean_rank_tie_by_topic_rank(made) -> None:
    frame = pd.read_csv(made.out / "topic_ranking.csv")
    devel = frame[frame.partition == "devel"]
    assert list(zip(devel.system, devel.features, devel.place, strict=True)) == [
        ("MMT", "ge_ft", 1), ("LSTM + Self-Att", "fasttext", 2),
        ("LSTM + Self-Att", "ge_ft", 3), ("MMT", "fasttext", 4)]
    assert devel.mean_rank.tolist() == [2.0, 2.0, 2.0, 4.0]
    assert devel.topic_rank.tolist() == [1, 2, 3, 4]
    assert devel.emotion_score.tolist() == pytest.approx([30.0, 40.0, 50.0, 20.0])
    assert sorted(frame.partition.unique()) == ["devel", "test"]
    ranking = next(r for r in made.rankings if r.partition == "devel")
    assert [r.system for r in ranking.unranked] == ["MMT [topic]"]


def test_topic_paper_values_only_where_the_row_measured_them(made) -> None:
    topics = pd.read_csv(made.out / "topic_topics.csv")
    mmt = topics[topics.system == "MMT [topic]"].iloc[0]
    # §6.2: MMT on fastText + eGeMAPS + action units, 52.98 % topic score on test, no devel.
    assert math.isnan(mmt["paper_devel_topic_score"]) and mmt["paper_test_topic_score"] == 52.98
    assert "paper_devel_topic_f1" not in topics.columns  # the paper publishes no topic F1 here
    markdown = (made.out / "report.md").read_text()
    assert "| MMT [topic] | Ge + FT + AU | 2 | **60.00 ± 0.00** |" in markdown
    assert "– / 52.98" in markdown


def test_files_written_and_nothing_left_beside_them(made) -> None:
    assert made.files == sorted(
        ["report.md", "report.html", "report.json", "wild.csv", "trust.csv", "topic_topics.csv",
         "topic_emotions.csv", "topic_ranking.csv", "wild.png", "trust.png", "topic_topics.png",
         "topic_emotions.png"])
    assert sorted(p.name for p in made.out.iterdir()) == made.files
    assert [p.name for p in made.out.parent.iterdir()] == ["report"]  # no temporary folder
    for name in made.files:
        if name.endswith(".png"):
            assert (made.out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    manifest = json.loads((made.out / "report.json").read_text())
    assert len(manifest["runs"]) == 8 + 4 + 10  # finished and newest per seed only


def test_figures_show_the_headline_means_per_partition_with_seeds(made) -> None:
    wild = score_figure(table(made, "wild"))
    devel, test = wild.axes[:2]
    assert [label.get_text() for label in devel.get_xticklabels()] == ["Ge + FT", "VG + FT"]
    # Bars at the combined-CCC means (LSTM 0.25, 0.25; End2You 0.30, 0.20), a dot per seed.
    assert sorted(bar.get_height() for bar in devel.patches) == pytest.approx(
        [0.20, 0.25, 0.25, 0.30])
    assert sorted(bar.get_height() for bar in test.patches) == pytest.approx(
        [0.21, 0.26, 0.26, 0.31])
    dots = [point for collection in devel.collections for point in collection.get_offsets()]
    assert any(point[1] == pytest.approx(0.0947) for point in dots)  # the paper's diamond
    # Masked MuSe-Trust test labels: a devel panel only.
    assert len(score_figure(table(made, "trust")).axes) == 1


def test_the_report_is_an_mlflow_run_with_its_files(made, store: Store) -> None:
    run = store.client.get_run(made.run_id)
    assert run.info.status == "FINISHED"
    assert store.client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    artifacts = {a.path for a in store.client.list_artifacts(made.run_id)}
    assert set(made.files) <= artifacts
    assert run.data.metrics["wild/devel/score"] == pytest.approx(0.30)
    assert run.data.metrics["trust/devel/trustworthiness/ccc"] == pytest.approx(0.35)
    assert "test" not in {key.split("/")[1] for key in run.data.metrics if key.startswith("trust/")}
    assert run.data.params["runs"] == "22"
    note = run.data.tags[NOTE_TAG]
    assert "## MuSe-Wild" in note and ".png" not in note


def test_only_md_and_csv_by_default_and_a_report_replaces_the_previous_one(
        store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert muse_main(["report", "--tracking-uri", store.uri, "--out", str(out),
                      "--experiment", "MuSe-Trust"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "report.md", "trust.csv",
                                                     "trust.png"]
    assert muse_main(["report", "--tracking-uri", store.uri, "--out", str(out),
                      "--experiment", "MuSe-Wild", "--format", "csv"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "wild.csv", "wild.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_no_runs_is_an_error_and_writes_nothing(store: Store, tmp_path: Path, capsys) -> None:
    experiment = store.client.create_experiment("MuSe-Crashed")
    crashed = store.client.create_run(experiment, tags={"task": "wild", "model": "lstm_att",
                                                        "features": "ge_ft", "seed": "1"})
    store.client.log_metric(crashed.info.run_id, "best/devel/score", 0.5)
    store.client.set_terminated(crashed.info.run_id, "FAILED")
    out = tmp_path / "report"
    assert muse_main(["report", "--tracking-uri", store.uri, "--out", str(out),
                      "--experiment", "MuSe-Crashed"]) == 1
    assert "no finished muse runs in MuSe-Crashed" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(MuseError, match="no MLflow store at"):
        report(f"sqlite:///{tmp_path / 'missing.db'}", out=out)
    with pytest.raises(MuseError, match="--experiment MuSe-Nothing: no such experiment"):
        report(store.uri, ["MuSe-Nothing"], out=out)
    assert list(tmp_path.iterdir()) == []


def test_bad_options_are_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(MuseError, match="--format md,pdf: choose from md,csv,html"):
        report(store.uri, out=tmp_path / "r", formats=("md", "pdf"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(MuseError, match="is not a muse report folder"):
        report(store.uri, out=tmp_path / "mine")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


@pytest.fixture(scope="module")
def trained(demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    """Real one-epoch runs as train.py records them: two MuSe-Wild seeds, one MuSe-Topic."""
    root = tmp_path_factory.mktemp("trained")
    results = []
    for task, seed in (("wild", 1), ("wild", 2), ("topic", 1)):
        cfg = compose(f"paths.output_dir={root}/out-{task}-{seed}", f"task={task}", f"seed={seed}",
                      "debug=short", "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                      root=root, data=demo_stores[task].parent)
        results.append((task, train(cfg)))
    return cfg.logger.tracking_uri, results


def test_report_on_real_training_runs(trained, tmp_path: Path) -> None:
    uri, results = trained
    made = report(uri, out=tmp_path / "report")
    wild = table(made, "wild")
    assert len(wild.rows) == 1 and wild.rows[0].seeds == ("1", "2")
    devel = [result.devel for task, result in results if task == "wild"]
    for metric, pick in (("score", lambda s: s["score"]),
                         ("arousal/ccc", lambda s: s["arousal"]["ccc"]),
                         ("valence/ccc", lambda s: s["valence"]["ccc"])):
        cell = wild.rows[0].cell("devel", metric)
        assert cell.values == pytest.approx([pick(s) for s in devel]), metric
        assert wild.rows[0].cell("test", metric).n == 2
    topic = next(scores for task, scores in results if task == "topic")
    emotions = table(made, "topic_emotions").rows[0]
    assert emotions.cell("devel", "emotion_score").values == pytest.approx(
        [topic.devel["emotion_score"]])
    assert emotions.cell("test", "valence/score").values == pytest.approx(
        [topic.test["valence"]["score"]])
    topics = table(made, "topic_topics").rows[0]
    assert topics.cell("test", "topic/uar").values == pytest.approx([topic.test["topic"]["uar"]])
    assert topics.cell("devel", "topic_score").values == pytest.approx(
        [topic.devel["topic_score"]])
    assert [r.partition for r in made.rankings] == ["devel", "test"]
    # Table 2's LSTM + Self-Att on Ge + FT, the default run, stands beside it.
    assert wild.rows[0].paper_value("test", "score") == 0.0690
