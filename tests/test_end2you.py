"""End2You: the raw-audio CNN + LSTM, its masking, learning from audio alone, and multitask runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from composing import compose
from mlflow.tracking import MlflowClient

from muse.data.datamodule import MuseDataModule
from muse.errors import MuseError
from muse.models.end2you import AudioCNN, End2You
from muse.module import MuseModule
from muse.package.layout import aggregated_file
from muse.runs.evaluate import evaluate
from muse.runs.train import train
from muse.scoring import score_files

QUIET = "trainer.enable_progress_bar=false"


def batch(audio: torch.Tensor, features: torch.Tensor, lengths: list[int]) -> dict:
    steps = audio.shape[1]
    mask = torch.arange(steps)[None, :] < torch.tensor(lengths)[:, None]
    return {"audio": audio, "features": features, "mask": mask}


def test_the_audio_cnn_reduces_a_step_as_the_paper() -> None:
    cnn = AudioCNN(2000, (50, 125, 250), (8, 8, 6), (10, 8, 6), dropout=0.5)
    # 2000 -> 1999 -> pool 10: 199 -> 198 -> pool 8: 24 -> 23 -> pool 6: 3 positions x 250
    assert cnn.output_dim == 750
    assert cnn(torch.randn(4, 2000)).shape == (4, 750)
    with pytest.raises(ValueError, match="too few"):
        AudioCNN(400, (50, 125, 250), (8, 8, 6), (10, 8, 6), dropout=0.5)


def test_shapes_and_padding_never_reaches_a_real_step() -> None:
    torch.manual_seed(0)
    model = End2You(input_dim=12, audio_samples=2000, hidden_size=16).eval()
    audio, features = torch.randn(2, 7, 2000), torch.randn(2, 7, 12)
    encoded = model(batch(audio, features, [7, 4]))
    assert encoded.shape == (2, 7, 16) and model.output_dim == 16 and model.per_step
    # The second item alone, without padding, gives the same outputs on its 4 real steps;
    # garbage in its padded steps changes nothing either.
    alone = model(batch(audio[1:, :4], features[1:, :4], [4]))
    torch.testing.assert_close(encoded[1, :4], alone[0])
    noisy = audio.clone()
    noisy[1, 4:] = 100.0
    torch.testing.assert_close(model(batch(noisy, features, [7, 4]))[1, :4], encoded[1, :4])


def test_input_noise_reaches_the_features_in_training_only() -> None:
    """The noise regularises the feature vectors in training; evaluation reads them as they are."""
    torch.manual_seed(0)
    audio, features = torch.randn(2, 5, 2000), torch.randn(2, 5, 12)
    noisy = End2You(input_dim=12, audio_samples=2000, hidden_size=8, dropout=0.0,
                    input_noise=1.0)
    quiet = End2You(input_dim=12, audio_samples=2000, hidden_size=8, dropout=0.0)
    quiet.load_state_dict(noisy.state_dict())
    assert quiet.input_noise == 0.0  # the paper's: checkpoints saved without it load as before
    noisy.eval(), quiet.eval()
    torch.testing.assert_close(noisy(batch(audio, features, [5, 3])),
                               quiet(batch(audio, features, [5, 3])))
    noisy.train(), quiet.train()  # dropout 0: only the noise can tell the two apart
    clean = quiet(batch(audio, features, [5, 3]))
    torch.testing.assert_close(quiet(batch(audio, features, [5, 3])), clean)
    assert not torch.allclose(noisy(batch(audio, features, [5, 3])), clean)


def test_missing_audio_is_a_clear_error() -> None:
    model = End2You(input_dim=0, audio_samples=2000, hidden_size=8)
    with pytest.raises(ValueError, match="data.audio=true"):
        model({"features": torch.zeros(1, 3, 0), "mask": torch.ones(1, 3, dtype=torch.bool)})
    with pytest.raises(ValueError, match="raw audio"):
        End2You(input_dim=0, audio_samples=0)


def test_tanh_outputs_stay_in_the_label_range() -> None:
    module = MuseModule({"_target_": "muse.models.end2you.End2You", "audio_samples": 2000,
                         "hidden_size": 8}, 0, "wild",
                        [{"name": "arousal", "kind": "continuous"}], ["arousal"],
                        {"_target_": "torch.optim.Adam", "_partial_": True},
                        output_activation="tanh")
    with torch.no_grad():
        module.heads.layers["arousal"].bias.fill_(3.0)
        out = module(batch(torch.randn(1, 3, 2000), torch.zeros(1, 3, 0), [3]))["arousal"]
    assert out.shape == (1, 3) and bool(((out > 0.9) & (out < 1)).all())  # linear: ~3


@pytest.mark.slow
def test_learns_arousal_from_raw_audio_alone(demo_stores: dict[str, Path]) -> None:
    """The demo's voice gets louder, higher and brighter with arousal: hearing it is enough."""
    pl.seed_everything(0)
    datamodule = MuseDataModule(demo_stores["wild"], "wild", [], targets=["arousal"],
                                window=50, hop=50, eval_window=50, batch_size=2, audio=True)
    module = MuseModule(
        {"_target_": "muse.models.end2you.End2You",
         "audio_samples": datamodule.audio_samples_per_step},
        datamodule.feature_dim, "wild", [{"name": "arousal", "kind": "continuous"}],
        ["arousal"],
        # The paper's 8e-5 and batch 10 need 50 epochs of real data; a short CPU run on a
        # few minutes of audio needs more and larger steps (same compute per epoch).
        {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3},
        output_activation="tanh",
    )
    trainer = pl.Trainer(max_epochs=4, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0)
    trainer.fit(module, datamodule=datamodule)
    assert float(trainer.callback_metrics["devel/arousal/ccc"]) > 0.3  # chance: about 0


def test_the_paper_defaults_compose() -> None:
    cfg = compose("task=trust", "model=e2e_multitask", "+paper=e2e", root=Path("/tmp"))
    assert list(cfg.features.names) == ["vggface", "fasttext"]
    assert list(cfg.model.targets) == ["trustworthiness", "arousal", "valence"]
    assert cfg.data.audio and cfg.data.batch_size == 10
    assert cfg.model.optimizer.lr == 8e-5 and cfg.trainer.max_epochs == 50
    assert cfg.data.hop == 50 and cfg.callbacks.early_stopping.patience == 50
    assert not cfg.data.normalize_audio and cfg.model.encoder.input_noise == 0.0
    # muse's own defaults: the same model, other training settings
    cfg = compose("task=trust", "model=e2e_multitask", root=Path("/tmp"))
    assert cfg.model.optimizer.lr == 1e-3 and cfg.data.batch_size == 2 and cfg.data.hop == 50
    assert cfg.data.normalize and cfg.data.normalize_audio and cfg.model.encoder.input_noise == 1.0
    cfg = compose("model=e2e", "features=none", root=Path("/tmp"))
    assert list(cfg.features.names) == []


def test_multitask_logs_every_target_and_is_scored_on_trust(
        demo_package: Path, demo_stores: dict[str, Path], tmp_path: Path) -> None:
    cfg = compose("task=trust", "model=e2e_multitask",
                  "model.encoder.hidden_size=16", "trainer.max_epochs=2",
                  "+trainer.limit_train_batches=2", QUIET, root=tmp_path,
                  data=demo_stores["trust"].parent)
    result = train(cfg)
    run = MlflowClient(cfg.logger.tracking_uri).get_run(result.run_id)
    metrics = run.data.metrics
    for target in ("trustworthiness", "arousal", "valence"):
        assert f"devel/{target}/ccc" in metrics
    assert metrics["devel/score"] == metrics["devel/trustworthiness/ccc"]
    assert run.data.tags["model"] == "e2e_multitask"
    assert result.devel["score"] == pytest.approx(result.devel["trustworthiness"]["ccc"])
    # The submission holds trustworthiness only and passes the official scorer.
    devel = Path(result.predictions) / "devel.csv"
    gold = aggregated_file(demo_package, "trust", "devel")
    assert score_files("trust", gold, devel)["score"] == pytest.approx(
        result.devel["score"])
    evaluated = evaluate(compose(f"run_id={result.run_id}",
                                 f"paths.output_dir={tmp_path}/evaluated", name="evaluate",
                                 root=tmp_path))
    assert evaluated["scores"]["devel"]["score"] == pytest.approx(result.devel["score"],
                                                                  abs=1e-6)
    module = MuseModule.load_from_checkpoint(result.best_checkpoint)
    assert module.targets == ["trustworthiness", "arousal", "valence"]


def test_multitask_needs_the_trust_labels(demo_stores: dict[str, Path], tmp_path: Path) -> None:
    cfg = compose("task=wild", "model=e2e_multitask", "debug=fast", QUIET, root=tmp_path,
                  data=demo_stores["wild"].parent)
    with pytest.raises(MuseError, match="trustworthiness"):
        train(cfg)
