"""The linear SVM baseline (`model=svm`): its C sweep, refit, learning, records and reloading.

The reference numbers (segment means, per-C devel UARs, the refit) are recomputed here from
the HDF5 file with h5py and plain scikit-learn, independently of muse.classical.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io
from cli_scoring import score_with_cli
from composing import compose
from mlflow.tracking import MlflowClient
from sklearn.metrics import recall_score
from sklearn.svm import LinearSVC

from muse.classical.segments import Segments, load_segments, segment_means
from muse.classical.svm import FittedSVM, SVMSettings, choose, fit_target
from muse.errors import MuseError
from muse.runs.evaluate import evaluate
from muse.runs.sklearn import MODEL_FILE
from muse.runs.train import train
from muse.store.reader import MemoryRows, Store

pytestmark = pytest.mark.slow  # trains the SVM on its own 24-video package

TARGETS = ("topic", "arousal", "valence")
CHANCE_UAR = 100 / 3  # three arousal classes


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(package, topic store): 24 one-minute videos, enough segments for the SVM to learn
    arousal from egemaps (the 8-video session demo has 11 train and 9 devel segments)."""
    from muse.package.synthetic import synthesize
    from muse.store.prepare import prepare

    out = tmp_path_factory.mktemp("svm_package")
    path = synthesize(out / "muse2020", videos=24, minutes=1.0, seed=3,
                      features=["egemaps", "fasttext"])
    return path, prepare(path, out / "data", tasks=["topic"], audio_rate=0)["topic"]


@pytest.fixture(scope="module")
def svm_run(package, tmp_path_factory: pytest.TempPathFactory):
    """`python train.py task=topic model=svm` on the package, recorded in its own MLflow."""
    root = tmp_path_factory.mktemp("svm_run")
    cfg = compose("task=topic", "model=svm", "trainer.enable_progress_bar=false", root=root,
                  data=package[1].parent)
    with pytest.MonkeyPatch.context() as patch:  # MLflow exports its URI: keep it to this run
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        result = train(cfg)
    return cfg, result


def reference_segments(store: Path) -> dict:
    """Egemaps means per segment, partitions and labels, read straight from the file."""
    with h5py.File(store, "r") as file:
        rows = file["egemaps_aligned/features/egemaps"][()].astype(np.float64)
        offsets = file["egemaps_aligned/segment_offsets"][()]
        per_video = np.diff(file["segments/video_offsets"][()])
        partitions = np.repeat(file["videos/partition"].asstr()[()], per_video)
        labels = {t: file[f"segments/labels/{t}"][()] for t in TARGETS}
    counts = np.diff(offsets)
    assert (counts > 0).all()  # every segment has egemaps steps: no empty-segment case here
    means = np.add.reduceat(rows, offsets[:-1], axis=0) / counts[:, None]
    return {"x": means, "partition": partitions, "labels": labels}


def reference_uar(truth: np.ndarray, guess: np.ndarray) -> float:
    return 100 * recall_score(truth, guess, average="macro", zero_division=0)


def svc(C: float, seed: int = 42) -> LinearSVC:
    return LinearSVC(C=C, max_iter=100_000, dual="auto", random_state=seed)


def fitted_model(svm_run) -> FittedSVM:
    return FittedSVM.load(Path(svm_run[1].best_checkpoint))


def test_the_chosen_C_has_the_best_devel_uar(svm_run, package) -> None:
    fitted, ref = fitted_model(svm_run), reference_segments(package[1])
    Cs = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    spread = []
    for target in TARGETS:
        y = ref["labels"][target]
        train_rows = (ref["partition"] == "train") & (y >= 0)
        devel_rows = (ref["partition"] == "devel") & (y >= 0)
        uars = [reference_uar(y[devel_rows], svc(C).fit(ref["x"][train_rows], y[train_rows])
                              .predict(ref["x"][devel_rows])) for C in Cs]
        best = max(uars)
        expected = min(C for C, value in zip(Cs, uars, strict=True) if np.isclose(value, best))
        fit = fitted.fits[target]
        assert fit.Cs == Cs
        np.testing.assert_allclose(fit.devel_uar, uars, atol=1e-9)
        assert (target, fit.C) == (target, expected)
        assert svm_run[1].chosen["C"][target] == expected
        spread.append(best - min(uars))
    assert max(spread) > 10  # the sweep matters: some target's devel UAR moves with C


def test_segment_means_match_the_file(package) -> None:
    ref = reference_segments(package[1])
    segments = load_segments(Store(package[1]), ["egemaps"])
    np.testing.assert_allclose(segments.features, ref["x"], rtol=1e-12)
    streamed = load_segments(Store(package[1], memory_budget_mb=0),
                             ["egemaps"])  # read segment by segment
    np.testing.assert_array_equal(streamed.features, segments.features)
    np.testing.assert_array_equal(segments.partitions, ref["partition"])
    for target in TARGETS:
        np.testing.assert_array_equal(segments.labels[target], ref["labels"][target])


def test_a_tie_goes_to_the_smaller_C() -> None:
    assert choose((1e-3, 1e-2, 1e-1), (50.0, 70.0, 70.0)) == 1
    assert choose((1.0, 1e-2, 1e-5), (60.0, 60.0, 20.0)) == 1  # in any order of the Cs
    assert choose((1e-5, 1.0), (20.0, 60.0)) == 1  # a better UAR beats a smaller C


def test_the_test_model_is_refit_on_train_and_devel(svm_run, package) -> None:
    fitted, ref = fitted_model(svm_run), reference_segments(package[1])
    for target in TARGETS:
        y, fit = ref["labels"][target], fitted.fits[target]
        train_rows = np.flatnonzero((ref["partition"] == "train") & (y >= 0))
        devel_rows = np.flatnonzero((ref["partition"] == "devel") & (y >= 0))
        both = np.concatenate([train_rows, devel_rows])  # liblinear's result depends on order
        refit = svc(fit.C).fit(ref["x"][both], y[both])
        dev = svc(fit.C).fit(ref["x"][train_rows], y[train_rows])
        np.testing.assert_allclose(fit.test_model[-1].coef_, refit.coef_, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(fit.devel_model[-1].coef_, dev.coef_, rtol=1e-6, atol=1e-9)
        assert not np.allclose(fit.test_model[-1].coef_, fit.devel_model[-1].coef_)


def test_the_svm_learns_arousal_from_egemaps(svm_run) -> None:
    _, result = svm_run
    # Devel picks C, so its UAR is optimistic; test (the refit model, unseen) is the honest one.
    assert result.devel["arousal"]["uar"] > CHANCE_UAR + 15
    assert result.test["arousal"]["uar"] > CHANCE_UAR + 15


def test_unlabelled_segments_are_not_fitted_on() -> None:
    rng = np.random.default_rng(0)
    n = 60
    x = rng.standard_normal((n, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    partitions = np.array(["train"] * 40 + ["devel"] * 20)
    marked = y.copy()
    marked[:10] = -1
    wild = x.copy()
    wild[:10] = 1e3 * rng.standard_normal((10, 4))  # would wreck any model that fitted them

    def segments(features: np.ndarray, labels: np.ndarray, rows: slice) -> Segments:
        return Segments(features[rows], {"arousal": labels[rows]}, np.zeros(n)[rows],
                        np.arange(n)[rows], partitions[rows])

    settings = SVMSettings(Cs=(0.01, 1.0))
    with_unlabelled = fit_target(segments(wild, marked, slice(None)), "arousal", settings)
    without = fit_target(segments(x, y, slice(10, None)), "arousal", settings)
    assert with_unlabelled.C == without.C
    for model in ("devel_model", "test_model"):
        np.testing.assert_allclose(getattr(with_unlabelled, model)[-1].coef_,
                                   getattr(without, model)[-1].coef_)


def test_segment_means_need_an_aligned_table(package) -> None:
    with pytest.raises(MuseError, match="data.alignment=unaligned: .* egemaps_aligned or "
                                        "fasttext_aligned"):
        load_segments(Store(package[1]), ["egemaps"], table="unaligned")


def test_segment_means_give_zeros_to_an_empty_segment() -> None:
    rows = MemoryRows(np.arange(12, dtype=np.float32).reshape(6, 2))
    means = segment_means(rows, np.array([0, 2, 2, 6]))
    np.testing.assert_array_equal(means, [[1, 2], [0, 0], [7, 8]])


def test_the_run_is_recorded_in_mlflow(svm_run) -> None:
    cfg, result = svm_run
    client = MlflowClient(cfg.logger.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "svm-egemaps-s42"  # the model's default features
    assert client.get_experiment(run.info.experiment_id).name == "MuSe-Topic"
    assert (run.data.tags["model"], run.data.tags["task"]) == ("svm", "topic")
    assert run.data.params["model.kind"] == "sklearn"
    metrics = run.data.metrics
    for target in TARGETS:
        assert float(run.data.params[f"svm/{target}/C"]) == result.chosen["C"][target]
        assert metrics[f"svm/{target}/C"] == result.chosen["C"][target]
        history = client.get_metric_history(run.info.run_id, f"sweep/{target}/devel_uar")
        assert sorted(m.step for m in history) == list(range(6))
        assert max(m.value for m in history) == pytest.approx(max(
            fitted_model(svm_run).fits[target].devel_uar))
        assert metrics[f"best/devel/{target}/uar"] == result.devel[target]["uar"]
    assert metrics["best/test/emotion_score"] == result.test["emotion_score"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"predictions", "plots", "config.yaml", "scores.json"} <= artifacts
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/devel_confusion.png"}
    best = Path(run.data.tags["muse.best_checkpoint"])
    assert best.name == MODEL_FILE and best.parent.name == result.run_id and best.is_file()


def test_the_submission_passes_the_scorer(svm_run, package, capsys) -> None:
    _, result = svm_run
    test_csv = Path(result.predictions) / "test.csv"
    frame = pd.read_csv(test_csv)
    assert list(frame.columns) == ["id", "segment_id", "prediction_topic", "prediction_arousal",
                                   "prediction_valence"]
    scored = score_with_cli("topic", test_csv, package[0], capsys)
    assert scored["emotion_score"] == result.test["emotion_score"]
    assert scored["topic_score"] == result.test["topic_score"]


def test_evaluate_reloads_the_saved_model_and_reproduces_its_scores(svm_run, tmp_path) -> None:
    cfg, result = svm_run
    root = Path(cfg.paths.root_dir)
    by_run = evaluate(compose(f"run_id={result.run_id}", f"paths.output_dir={tmp_path}/run",
                              name="evaluate", root=root))
    assert by_run["scores"]["devel"] == result.devel
    assert by_run["scores"]["test"] == result.test
    assert (pd.read_csv(tmp_path / "run" / "test.csv")
            .equals(pd.read_csv(Path(result.predictions) / "test.csv")))
    metrics = MlflowClient(cfg.logger.tracking_uri).get_run(result.run_id).data.metrics
    assert metrics["evaluate/devel/emotion_score"] == result.devel["emotion_score"]
    by_file = evaluate(compose(f"ckpt={result.best_checkpoint}",
                               f"paths.output_dir={tmp_path}/file", name="evaluate", root=root))
    assert by_file["run_id"] == result.run_id
    assert by_file["scores"]["devel"] == result.devel


def test_evaluate_refuses_a_file_that_is_no_saved_svm(svm_run, tmp_path) -> None:
    path = tmp_path / "other.joblib"
    joblib.dump({"not": "an svm"}, path)
    root = Path(svm_run[0].paths.root_dir)  # its MLflow database exists: no new one to create
    with pytest.raises(MuseError, match="not a saved muse SVM"):
        evaluate(compose(f"ckpt={path}", f"paths.output_dir={tmp_path}", name="evaluate",
                         root=root))


class _OpensAFile:
    """Pickled, a payload whose unpickling creates a file: what a malicious model file does."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def test_evaluate_never_runs_code_from_a_pickled_model(svm_run, tmp_path) -> None:
    created = tmp_path / "pwned"
    path = tmp_path / "model.joblib"
    joblib.dump(_OpensAFile(created), path)
    root = Path(svm_run[0].paths.root_dir)
    with pytest.raises(MuseError, match=r"model\.joblib: not a saved muse SVM.*never loads.*"
                                        r"train the SVM again"):
        evaluate(compose(f"ckpt={path}", f"paths.output_dir={tmp_path}/out", name="evaluate",
                         root=root))
    assert not created.exists()


def test_a_skops_file_with_other_types_is_refused_unloaded(svm_run, tmp_path) -> None:
    path = tmp_path / "svm.skops"
    skops.io.dump({"format": "muse-svm", "version": 1, "run": os.system}, path)
    with pytest.raises(MuseError, match=r"holds types a muse SVM never has \(posix\.system\)"):
        FittedSVM.load(path)
    truncated = tmp_path / "truncated.skops"
    truncated.write_bytes(Path(svm_run[1].best_checkpoint).read_bytes()[:300])
    with pytest.raises(MuseError, match="truncated.skops: not a saved muse SVM"):
        FittedSVM.load(truncated)


def test_the_svm_is_for_muse_topic_only(tmp_path) -> None:
    with pytest.raises(MuseError, match="task=topic only, not task=wild"):
        train(compose("task=wild", "model=svm", root=tmp_path, data=tmp_path))
    assert not (tmp_path / "logs").exists()  # refused before any data or run is made
