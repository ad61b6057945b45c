"""`muse predict`: runs trained on the tiny demo applied to real speech (tests/data/speech.flac)
muxed into an mp4, end to end: the per-video CSV and PNG, the checkpoint's normalisation, the
SVM's classes and probabilities, End2You on the raw audio, and the refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from composing import compose
from extract_media import SPEECH_MS, mux, train_fasttext, write_transcript
from mlflow.tracking import MlflowClient

from muse.classical.segments import load_segments
from muse.classical.svm import FittedSVM
from muse.cli import main
from muse.data.datamodule import MuseDataModule
from muse.data.normalization import Normalizer
from muse.errors import MuseError
from muse.module import MuseModule
from muse.package.extract import extract_package
from muse.predict import PredictError, predict_run
from muse.runs.evaluation import evaluate_module
from muse.runs.evaluation import predict as predict_partition
from muse.runs.tracking import split_checkpoints
from muse.runs.train import train
from muse.store.prepare import prepare
from muse.store.reader import Store

QUICK = ["data.batch_size=8", "model.optimizer.lr=3e-3", "trainer.enable_progress_bar=false",
         "trainer.log_every_n_steps=1", "trainer.max_epochs=1"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Trained:
    """The runs of this module, trained once in one tracking store."""

    def __init__(self, root: Path, data_dir: Path) -> None:
        self.root, self.data_dir = root, data_dir
        self.tracking_uri = f"sqlite:///{root}/logs/mlflow.db"
        self._runs: dict[str, str] = {}

    def run(self, name: str, *overrides: str) -> str:
        """The id of the run `name`, trained with `overrides` on first use."""
        if name not in self._runs:
            cfg = compose(f"paths.output_dir={self.root}/out/{name}", *overrides,
                          root=self.root, data=self.data_dir)
            self._runs[name] = train(cfg).run_id
        return self._runs[name]

    def wild(self) -> str:  # LSTM + self-attention on eGeMAPS + fastText (the default run)
        return self.run("wild", *QUICK)

    def topic(self) -> str:  # the LSTM on MuSe-Topic, eGeMAPS + fastText, one multitask model
        return self.run("topic", *QUICK, "task=topic", "model.per_target=false",
                        "+trainer.limit_train_batches=2")

    def topic_per_target(self) -> str:  # the same at the defaults: one model per target
        return self.run("topic_per_target", *QUICK, "task=topic",
                        "+trainer.limit_train_batches=2")

    def svm(self) -> str:
        return self.run("svm", "task=topic", "model=svm", "model.Cs=[0.01,0.1]", "model.scale=true",
                        "model.max_iter=5000")

    def vggface(self) -> str:
        return self.run("vggface", *QUICK, "features=vggface", "+trainer.limit_train_batches=1")

    def end2you(self) -> str:  # the raw audio alone
        return self.run("e2e", *QUICK, "model=e2e", "features=none", "data.batch_size=4",
                        "+trainer.limit_train_batches=2")

    def checkpoint(self, run_id: str) -> Path:
        tags = MlflowClient(self.tracking_uri).get_run(run_id).data.tags
        return Path(tags["muse.best_checkpoint"])


@pytest.fixture(scope="module")
def runs(demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return Trained(tmp_path_factory.mktemp("predict_runs"), demo_stores["wild"].parent)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The speech clip muxed into `review.mp4`, its transcript and a tiny fastText model."""
    folder = tmp_path_factory.mktemp("predict_media")
    (folder / "transcripts").mkdir()
    return {"mp4": mux(folder / "review.mp4", "mp4"),
            "transcripts": write_transcript(folder / "transcripts" / "review.csv").parent,
            "fasttext": train_fasttext(folder)}


@pytest.fixture(scope="module")
def package(media: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same mp4 extracted once with eGeMAPS and fastText, as `muse predict` extracts it."""
    return extract_package([media["mp4"]], tmp_path_factory.mktemp("predict_pkg") / "package",
                           transcripts=media["transcripts"], fasttext_model=media["fasttext"],
                           features=["egemaps", "fasttext"])


def test_predict_on_an_mp4_writes_the_curves_and_logs_them_under_the_run(
        runs: Trained, media: dict[str, Path], package: Path, tmp_path: Path, capsys) -> None:
    run_id = runs.wild()
    client = MlflowClient(runs.tracking_uri)
    before = client.get_run(run_id)
    out = tmp_path / "review_predictions"
    code = main(["predict", "--run", run_id, "--media", str(media["mp4"]), "--out", str(out),
                 "--transcripts", str(media["transcripts"]), "--fasttext-model",
                 str(media["fasttext"]), "--tracking-uri", runs.tracking_uri, "--log"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["review.csv", "review.png"]

    frame = pd.read_csv(out / "review.csv")
    assert list(frame.columns) == ["timestamp", "segment_id", "prediction_arousal",
                                   "prediction_valence"]
    steps = pd.read_csv(package / "c1_muse_wild/feature_segments/label_aligned/egemaps/1.csv")
    assert frame["timestamp"].tolist() == steps["timestamp"].tolist()
    assert frame["segment_id"].tolist() == steps["segment_id"].tolist()
    # the steps of the spoken part, on the 250 ms grid
    assert (frame["timestamp"] % 250 == 0).all()
    assert SPEECH_MS[0] - 250 <= frame["timestamp"].min() < frame["timestamp"].max() < SPEECH_MS[1]
    values = frame[["prediction_arousal", "prediction_valence"]].to_numpy()
    assert np.isfinite(values).all() and values.std(axis=0).min() > 0
    assert (out / "review.png").read_bytes()[:8] == PNG_MAGIC

    after = client.get_run(run_id)
    logged = {a.path for a in client.list_artifacts(run_id, "predictions/review_predictions")}
    assert logged == {"predictions/review_predictions/review.csv",
                      "predictions/review_predictions/review.png"}
    assert after.info.status == before.info.status == "FINISHED"
    assert after.data.metrics == before.data.metrics


def loaded_on_package(checkpoint: Path, package: Path, folder: Path, task: str,
                      features: list[str]) -> tuple[MuseModule, MuseDataModule]:
    """evaluate.py's path: the module and its datamodule from the checkpoint (with its saved
    statistics) on a store `muse prepare` makes of `package`."""
    store = prepare(package, folder, tasks=[task], features=features)[task]
    module = MuseModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    return module, MuseDataModule.load_from_checkpoint(checkpoint, store_path=str(store))


def test_evaluating_a_store_without_devel_videos_predicts_its_test_partition(
        runs: Trained, package: Path, tmp_path: Path) -> None:
    """A package of new media has every video in test: evaluate.py's path leaves devel out
    instead of failing on an empty loader."""
    module, data = loaded_on_package(runs.checkpoint(runs.wild()), package, tmp_path / "data",
                                     "wild", ["egemaps", "fasttext"])
    evaluation = evaluate_module(module, data, "wild", ["arousal", "valence"])
    assert set(evaluation.predictions) == {"test"}
    assert len(evaluation.predictions["test"]) > 0


def test_predictions_apply_the_normalisation_saved_in_the_checkpoint(
        runs: Trained, package: Path, tmp_path: Path) -> None:
    run_id = runs.wild()
    written = predict_run(run_id, tmp_path / "out", package=package,
                          tracking_uri=runs.tracking_uri)
    ours = pd.read_csv(written[0])

    # evaluate.py's path on a store of the same package: the module and its datamodule from
    # the checkpoint, whose saved statistics it applies
    checkpoint = runs.checkpoint(run_id)
    module, data = loaded_on_package(checkpoint, package, tmp_path / "data", "wild",
                                     ["egemaps", "fasttext"])
    reference, _, _ = predict_partition(module, data, "test", ["arousal", "valence"])
    assert reference["timestamp"].tolist() == ours["timestamp"].tolist()
    for target in ("arousal", "valence"):
        np.testing.assert_allclose(ours[f"prediction_{target}"], reference[f"prediction_{target}"],
                                   rtol=0, atol=1e-6)

    # and they matter: the same module on the raw features (identity statistics) differs
    raw = MuseDataModule.load_from_checkpoint(checkpoint, store_path=str(data.store_path))
    width = raw.feature_dim
    raw.load_state_dict({"normalization": {"egemaps+fasttext": Normalizer(
        np.zeros(width), np.ones(width)).state_dict()}})
    unnormalised, _, _ = predict_partition(module, raw, "test", ["arousal", "valence"])
    assert np.abs(unnormalised["prediction_arousal"] - ours["prediction_arousal"]).max() > 1e-3


def test_the_svm_writes_each_segments_classes_with_probabilities(
        runs: Trained, media: dict[str, Path], package: Path, tmp_path: Path) -> None:
    run_id = runs.svm()
    written = predict_run(run_id, tmp_path / "out", media=[media["mp4"]],
                          tracking_uri=runs.tracking_uri)
    assert [p.name for p in written] == ["review.csv", "review.png"]
    frame = pd.read_csv(written[0])
    classes = {"topic": 10, "arousal": 3, "valence": 3}
    assert list(frame.columns) == (
        ["segment_id", "start", "end"] + [f"prediction_{t}" for t in classes]
        + [f"probability_{t}_{k}" for t, n in classes.items() for k in range(n)])
    assert len(frame) >= 1 and (frame["start"] < frame["end"]).all()
    for target, n in classes.items():
        probabilities = frame[[f"probability_{target}_{k}" for k in range(n)]].to_numpy()
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)
        assert (probabilities >= 0).all()
        assert (probabilities.argmax(axis=1) == frame[f"prediction_{target}"]).all()

    # the classes the saved SVM itself gives the segment means of the same package
    fitted = FittedSVM.load(runs.checkpoint(run_id))
    store = prepare(package, tmp_path / "data", tasks=["topic"], features=["egemaps"])["topic"]
    segments = load_segments(Store(store), fitted.features, fitted.table, fitted.targets)
    expected = fitted.predict(segments.features, "test")
    for target in classes:
        assert frame[f"prediction_{target}"].tolist() == expected[target].tolist()


def test_the_topic_lstm_gives_the_classes_of_its_logits_with_their_softmax(
        runs: Trained, media: dict[str, Path], package: Path, tmp_path: Path) -> None:
    run_id = runs.topic()
    written = predict_run(run_id, tmp_path / "out", media=[media["mp4"]],
                          transcripts=media["transcripts"], fasttext_model=media["fasttext"],
                          tracking_uri=runs.tracking_uri)
    frame = pd.read_csv(written[0])
    module, data = loaded_on_package(runs.checkpoint(run_id), package, tmp_path / "data",
                                     "topic", ["egemaps", "fasttext"])
    batch = next(iter(data.predict_dataloader("test")))
    with torch.no_grad():
        logits = module(batch)
    assert frame["segment_id"].tolist() == batch["segment_id"].tolist()
    for target, n in {"topic": 10, "arousal": 3, "valence": 3}.items():
        probabilities = frame[[f"probability_{target}_{k}" for k in range(n)]].to_numpy()
        np.testing.assert_allclose(probabilities, torch.softmax(logits[target], 1).numpy(),
                                   atol=1e-6)
        assert frame[f"prediction_{target}"].tolist() == logits[target].argmax(1).tolist()


def test_a_run_of_one_model_per_target_predicts_each_target_with_its_own_model(
        runs: Trained, media: dict[str, Path], package: Path, tmp_path: Path) -> None:
    """MuSe-Topic's LSTM default: three checkpoints, merged into one file per video."""
    run_id = runs.topic_per_target()
    tags = MlflowClient(runs.tracking_uri).get_run(run_id).data.tags
    checkpoints = [Path(p) for p in split_checkpoints(tags["muse.best_checkpoint"])]
    assert len(checkpoints) == 3
    written = predict_run(run_id, tmp_path / "out", media=[media["mp4"]],
                          transcripts=media["transcripts"], fasttext_model=media["fasttext"],
                          tracking_uri=runs.tracking_uri)
    frame = pd.read_csv(written[0])
    classes = {"topic": 10, "arousal": 3, "valence": 3}
    for checkpoint in checkpoints:
        # One store for the three: prepare does no work when the package is unchanged.
        module, data = loaded_on_package(checkpoint, package, tmp_path / "data", "topic",
                                         ["egemaps", "fasttext"])
        (spec,) = module.hparams.targets
        target = spec["name"]
        batch = next(iter(data.predict_dataloader("test")))
        with torch.no_grad():
            logits = module(batch)[target]
        assert frame["segment_id"].tolist() == batch["segment_id"].tolist()
        probabilities = frame[[f"probability_{target}_{k}" for k in range(classes.pop(target))]]
        np.testing.assert_allclose(probabilities.to_numpy(), torch.softmax(logits, 1).numpy(),
                                   atol=1e-6)
        assert frame[f"prediction_{target}"].tolist() == logits.argmax(1).tolist()
    assert not classes  # every target had its model


def test_end2you_predicts_from_the_raw_audio(runs: Trained, media: dict[str, Path],
                                             package: Path, tmp_path: Path) -> None:
    wav = mux(tmp_path / "cabin.wav", "wav")  # a second file: one pair of files per video
    written = predict_run(runs.end2you(), tmp_path / "out", media=[media["mp4"], wav],
                          tracking_uri=runs.tracking_uri)
    assert sorted(p.name for p in written) == ["cabin.csv", "cabin.png", "review.csv",
                                               "review.png"]
    frame = pd.read_csv(tmp_path / "out" / "review.csv")
    # the same speech from a lossless wav: the same steps, values within the mp4's lossy AAC
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out" / "cabin.csv"), frame, atol=0.01)
    assert list(frame.columns) == ["timestamp", "segment_id", "prediction_arousal",
                                   "prediction_valence"]
    steps = pd.read_csv(package / "c1_muse_wild/feature_segments/label_aligned/egemaps/1.csv")
    assert frame["timestamp"].tolist() == steps["timestamp"].tolist()
    values = frame[["prediction_arousal", "prediction_valence"]].to_numpy()
    assert np.isfinite(values).all() and (np.abs(values) <= 1).all()  # tanh outputs
    assert values.std(axis=0).min() > 0  # the audio of each step, not a constant


def test_a_run_on_vggface_is_refused_naming_the_set(
        runs: Trained, media: dict[str, Path], tmp_path: Path, capsys) -> None:
    run_id = runs.vggface()
    out = tmp_path / "out"
    with pytest.raises(PredictError, match="vggface.*VGGFace weights") as refused:
        predict_run(run_id, out, media=[media["mp4"]], tracking_uri=runs.tracking_uri)
    assert "egemaps, lld, fasttext" in str(refused.value)
    assert not out.exists()
    capsys.readouterr()
    assert main(["predict", "--run", run_id, "--media", str(media["mp4"]), "--out", str(out),
                 "--tracking-uri", runs.tracking_uri]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("muse predict: error: run ") and "vggface" in error
    assert "\n" not in error and not out.exists()


def test_a_package_holding_the_runs_sets_is_predicted_in_every_partition(
        runs: Trained, demo_package: Path, tmp_path: Path) -> None:
    written = predict_run(runs.vggface(), tmp_path / "out", package=demo_package,
                          tracking_uri=runs.tracking_uri)
    partition = pd.read_csv(demo_package / "metadata/partition.csv")
    assert set(partition["Proposal"]) == {"train", "devel", "test"}
    assert sorted(p.name for p in written) == sorted(
        f"{video}.{suffix}" for video in partition["Id"] for suffix in ("csv", "png"))
    for video in partition["Id"]:  # named by id: the package records no media files
        frame = pd.read_csv(tmp_path / "out" / f"{video}.csv")
        labels = pd.read_csv(demo_package / f"c1_muse_wild/label_segments/arousal/{video}.csv")
        assert frame["timestamp"].tolist() == labels["timestamp"].tolist()
        assert frame["segment_id"].tolist() == labels["segment_id"].tolist()


def test_a_failure_leaves_nothing_in_out(runs: Trained, media: dict[str, Path],
                                         tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(MuseError, match="fastText binary model"):  # the run reads fasttext
        predict_run(runs.wild(), out, media=[media["mp4"]], tracking_uri=runs.tracking_uri)
    assert list(tmp_path.iterdir()) == []
    (out / "old.csv").parent.mkdir()
    (out / "old.csv").write_text("x\n")
    with pytest.raises(PredictError, match="not empty"):
        predict_run(runs.wild(), out, media=[media["mp4"]], tracking_uri=runs.tracking_uri)
    with pytest.raises(PredictError, match="no such run"):
        predict_run("0123456789abcdef", tmp_path / "new", media=[media["mp4"]],
                    tracking_uri=runs.tracking_uri)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
