"""Feature normalisation is part of the trained model: statistics of the train partition only,
saved in the checkpoint, and applied - never refitted - when a checkpoint predicts later."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from handmade_package import write_package
from test_module import ADAM, FEATURES, make_module, make_trainer, target_specs

from muse.data.datamodule import CONTINUOUS_TABLE, MuseDataModule
from muse.data.normalization import Normalizer
from muse.errors import MuseError
from muse.module import MuseModule
from muse.runs.evaluate import evaluate_checkpoint
from muse.store.prepare import prepare
from muse.store.reader import Store

pytestmark = pytest.mark.slow  # trains with and without normalisation

FUSED = "+".join(FEATURES)
SHIFT_SCALE, SHIFT = 3.0, 100.0  # the other store's features: 3 x + 100, every partition


def fused_rows(store_path) -> tuple[np.ndarray, np.ndarray]:
    """The store's fused label-aligned rows (float64) and each row's partition."""
    store = Store(store_path)
    offsets = store.read(f"{CONTINUOUS_TABLE}/video_offsets")
    rows = store.rows(CONTINUOUS_TABLE, FEATURES).read(0, int(offsets[-1])).astype(np.float64)
    partition = np.asarray(store.partitions)[np.repeat(np.arange(len(offsets) - 1),
                                                       np.diff(offsets))]
    store.close()
    return rows, partition


@pytest.fixture(scope="module")
def checkpoint(demo_stores, tmp_path_factory):
    """A wild LSTM trained briefly on the demo store (default normalisation), saved."""
    pl.seed_everything(0)
    dm = MuseDataModule(str(demo_stores["wild"]), "wild", FEATURES, batch_size=8, eval_window=50)
    trainer = make_trainer(max_epochs=1, limit_train_batches=4)
    trainer.fit(make_module(dm, lr=3e-3), dm)
    path = tmp_path_factory.mktemp("normalised") / "model.ckpt"
    trainer.save_checkpoint(path)
    return path


def test_statistics_come_from_train_and_travel_in_the_checkpoint(demo_stores, checkpoint):
    rows, partition = fused_rows(demo_stores["wild"])
    train = rows[partition == "train"]
    saved = torch.load(checkpoint, weights_only=True)["MuseDataModule"]["normalization"]
    assert list(saved) == [FUSED]
    np.testing.assert_allclose(saved[FUSED]["mean"].numpy(), train.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(saved[FUSED]["std"].numpy(), train.std(0), rtol=1e-5, atol=1e-6)
    # Not the statistics of all rows: devel and test did not leak into them.
    assert not np.allclose(saved[FUSED]["mean"].numpy(), rows.mean(0), rtol=1e-3)


def shifted_store(source, folder):
    """A copy of the store (same file name, as `evaluate.py data_dir=...` finds it) whose
    features are 3 x + 100 in every partition: refitted statistics would undo the shift."""
    folder.mkdir()
    copy = folder / source.name
    shutil.copyfile(source, copy)
    with h5py.File(copy, "r+") as file:
        for name in FEATURES:
            dataset = file[f"{CONTINUOUS_TABLE}/features/{name}"]
            dataset[...] = dataset[...] * SHIFT_SCALE + SHIFT
    return copy


def test_a_checkpoint_predicts_another_store_with_its_saved_statistics(
        demo_stores, checkpoint, tmp_path):
    store = shifted_store(demo_stores["wild"], tmp_path / "shifted")
    evaluation, _ = evaluate_checkpoint(checkpoint, str(store.parent))
    got = evaluation.predictions["devel"]

    # What the saved statistics dictate: the raw shifted rows, standardised by hand with them.
    saved = torch.load(checkpoint, weights_only=True)["MuseDataModule"]["normalization"][FUSED]
    normalizer = Normalizer.from_state(saved)
    raw = MuseDataModule(str(store), "wild", FEATURES, eval_window=50, normalize=False)
    module = MuseModule.load_from_checkpoint(checkpoint, map_location="cpu").eval()
    batches, predictions = [], []
    with torch.inference_mode():
        for batch in raw.predict_dataloader("devel"):
            standardised = torch.from_numpy(normalizer(batch["features"].numpy()))
            batch["features"] = torch.where(batch["mask"][..., None], standardised, 0.0)
            batches.append(batch)
            predictions.append(module(batch))
    expected = raw.predictions_frame(batches, predictions, ["arousal", "valence"])
    np.testing.assert_allclose(got["prediction_arousal"], expected["prediction_arousal"],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["prediction_valence"], expected["prediction_valence"],
                               rtol=1e-4, atol=1e-5)

    # Refitted statistics would have undone the shift and predicted as on the original store.
    original, _ = evaluate_checkpoint(checkpoint, str(demo_stores["wild"].parent))
    assert not np.allclose(original.predictions["devel"]["prediction_arousal"],
                           got["prediction_arousal"], atol=1e-3)


def test_saved_statistics_replace_fitted_ones_after_setup(demo_stores):
    """Lightning restores a resumed fit's datamodule state after `setup`: the datasets follow."""
    dm = MuseDataModule(str(demo_stores["wild"]), "wild", FEATURES, eval_batch_size=1)
    first = dm.dataset("devel")[0]["features"]
    state = dm.state_dict()
    moved = {FUSED: {"mean": state["normalization"][FUSED]["mean"] + 1.0,
                     "std": state["normalization"][FUSED]["std"] * 2.0}}
    dm.load_state_dict({"normalization": moved})
    std = state["normalization"][FUSED]["std"].numpy()
    # (x - mean - 1) / (2 std), with x - mean = first * std
    np.testing.assert_allclose(dm.dataset("devel")[0]["features"], (first * std - 1.0) / (2 * std),
                               rtol=1e-4, atol=1e-4)


def test_unaligned_streams_keep_their_own_saved_statistics(demo_stores):
    store = str(demo_stores["topic"])
    fitted = MuseDataModule(store, "topic", ["egemaps", "fasttext"], alignment="unaligned")
    state = fitted.state_dict()
    assert set(state["normalization"]) == {"egemaps", "fasttext"}
    state["normalization"]["egemaps"]["mean"] += 5.0
    restored = MuseDataModule(store, "topic", ["egemaps", "fasttext"], alignment="unaligned")
    restored.load_state_dict(state)
    np.testing.assert_allclose(restored.dataset("devel")[0]["modalities"]["egemaps"],
                               fitted.dataset("devel")[0]["modalities"]["egemaps"] - 5.0
                               / state["normalization"]["egemaps"]["std"].numpy(),
                               rtol=1e-4, atol=1e-4)


def test_statistics_of_other_features_are_refused(demo_stores):
    dm = MuseDataModule(str(demo_stores["wild"]), "wild", ["egemaps"])
    dm.load_state_dict({"normalization": {FUSED: Normalizer(np.zeros(3), np.ones(3)).state_dict()}})
    with pytest.raises(MuseError, match="statistics are for egemaps\\+fasttext"):
        dm.setup()


def test_audio_statistics_come_from_train_and_travel_with_the_features(demo_stores):
    """End2You's raw audio: one mean and std of the train videos' samples, saved beside the
    feature statistics and restored from them; without `normalize_audio` (the default, and
    every checkpoint saved before it) the samples stay as they are."""
    store = str(demo_stores["wild"])
    dm = MuseDataModule(store, "wild", FEATURES, audio=True, normalize_audio=True)
    state = dm.state_dict()["normalization"]
    assert set(state) == {FUSED, "audio"}
    reader = Store(store)
    audio = reader.audio()
    train = reader.videos("train")
    samples = np.concatenate([audio.read(int(audio.offsets[v]), int(audio.offsets[v + 1]))
                              for v in train]).astype(np.float64)
    everything = audio.read(0, int(audio.offsets[-1])).astype(np.float64)
    reader.close()
    np.testing.assert_allclose(state["audio"]["mean"].numpy(), [samples.mean()], atol=1e-7)
    np.testing.assert_allclose(state["audio"]["std"].numpy(), [samples.std()], rtol=1e-5)
    assert not np.isclose(samples.std(), everything.std(), rtol=1e-3)  # devel did not leak
    raw = MuseDataModule(store, "wild", FEATURES, audio=True)
    assert set(raw.state_dict()["normalization"]) == {FUSED}
    heard = raw.dataset("devel")[0]["audio"]
    np.testing.assert_allclose(dm.dataset("devel")[0]["audio"],
                               (heard - samples.mean()) / samples.std(), rtol=1e-4, atol=1e-4)

    moved = {FUSED: state[FUSED], "audio": {"mean": state["audio"]["mean"] + 0.5,
                                            "std": state["audio"]["std"] * 2.0}}
    restored = MuseDataModule(store, "wild", FEATURES, audio=True, normalize_audio=True)
    restored.load_state_dict({"normalization": moved})
    np.testing.assert_allclose(restored.dataset("devel")[0]["audio"],
                               (heard - samples.mean() - 0.5) / (2 * samples.std()),
                               rtol=1e-4, atol=1e-4)
    with pytest.raises(MuseError, match="statistics are for .*audio"):
        raw.load_state_dict({"normalization": moved})
    with pytest.raises(ValueError, match="audio=True"):
        MuseDataModule(store, "wild", FEATURES, normalize_audio=True)


def test_an_end2you_checkpoint_without_audio_statistics_reads_its_audio_raw(demo_stores, tmp_path):
    """A checkpoint saved before `normalize_audio` existed (no such hyperparameter, no audio
    statistics) still loads, and its datamodule reads the samples as the model was trained on
    them; a newer one applies its saved audio statistics."""
    store = str(demo_stores["wild"])
    dm = MuseDataModule(store, "wild", [], audio=True, normalize_audio=True, batch_size=2,
                        eval_window=50)
    module = MuseModule({"_target_": "muse.models.end2you.End2You", "hidden_size": 8,
                         "audio_samples": dm.audio_samples_per_step}, 0, "wild",
                        target_specs(dm), list(dm.spec.scored), ADAM)
    trainer = make_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1)
    trainer.fit(module, dm)
    new = tmp_path / "new.ckpt"
    trainer.save_checkpoint(new)
    saved = torch.load(new, weights_only=True)
    assert set(saved["MuseDataModule"]["normalization"]) == {"", "audio"}
    del saved["datamodule_hyper_parameters"]["normalize_audio"]
    del saved["MuseDataModule"]["normalization"]["audio"]
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)

    heard = MuseDataModule(store, "wild", [], audio=True, eval_window=50).dataset("devel")[0]
    restored = MuseDataModule.load_from_checkpoint(old)
    assert not restored.normalize_audio
    np.testing.assert_array_equal(restored.dataset("devel")[0]["audio"], heard["audio"])
    standardised = MuseDataModule.load_from_checkpoint(new)
    statistics = standardised.state_dict()["normalization"]["audio"]
    np.testing.assert_allclose(standardised.dataset("devel")[0]["audio"],
                               (heard["audio"] - statistics["mean"].numpy())
                               / statistics["std"].numpy(), rtol=1e-5, atol=1e-5)


def test_audio_statistics_of_a_hand_written_package_are_its_wav_files(tmp_path):
    """Per-segment 16 kHz wav files as the challenge ships them (not written by `muse synth`):
    train video 11 holds a 440 Hz sine at amplitude 0.3, then 0.6, so its samples have mean 0
    and std sqrt((0.3^2 + 0.6^2) / 4) = 0.335 after prepare resamples them to 8 kHz."""
    package = write_package(tmp_path / "muse2020")
    store = prepare(package, tmp_path / "data", tasks=["wild"], features=["egemaps"])["wild"]
    dm = MuseDataModule(str(store), "wild", ["egemaps"], audio=True, normalize_audio=True,
                        window=8, hop=8)
    dm.setup()
    statistics = dm.normalizers["audio"]
    assert abs(float(statistics.mean[0])) < 1e-3
    assert float(statistics.std[0]) == pytest.approx(np.sqrt((0.3**2 + 0.6**2) / 4), rel=0.02)
