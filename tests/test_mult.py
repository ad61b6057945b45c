"""The Multimodal Transformer (model=mmt): encoder shapes and masking, unaligned topic inputs
through the datamodule, learning the planted topic signal, and a train.py run whose checkpoint
reloads with its devel score."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from cli_scoring import score_with_cli
from composing import compose
from mlflow.tracking import MlflowClient
from test_module import make_trainer

from muse.data.datamodule import MuseDataModule
from muse.data.unaligned import group_by_segment
from muse.errors import MuseError, StoreError
from muse.metrics import classification_scores
from muse.models.crossmodal import TransformerStack, sinusoidal_positions
from muse.models.mult import MultimodalTransformer
from muse.module import MuseModule
from muse.runs.tracking import PARENT_TAG, TARGET_TAG
from muse.runs.train import train

# Thousands of small operations a step (30 channels): a second intra-op thread gains little.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


DIMS = {"text": 7, "audio": 5, "vision": 3}
SMALL = dict(dim=10, heads=2, layers=2)


def unaligned_batch(lengths: dict[str, list[int]], steps: dict[str, int] | None = None,
                    dims: dict[str, int] = DIMS) -> dict:
    """Random rows per stream, loud garbage (not zeros) on the padding."""
    steps = steps or {name: max(max(n), 1) for name, n in lengths.items()}
    modalities, masks = {}, {}
    for name, n in lengths.items():
        mask = torch.arange(steps[name])[None, :] < torch.tensor(n)[:, None]
        x = torch.randn(len(n), steps[name], dims[name])
        x[~mask] = 100.0
        modalities[name], masks[name] = x, mask
    return {"modalities": modalities, "modality_masks": masks}


def item(batch: dict, row: int) -> dict:
    """One item of an unaligned batch, cut to its real rows."""
    masks = batch["modality_masks"]
    return {
        "modalities": {name: x[row:row + 1, :int(masks[name][row].sum())]
                       for name, x in batch["modalities"].items()},
        "modality_masks": {name: m[row:row + 1, :int(m[row].sum())] for name, m in masks.items()},
    }


# -- the encoder ------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [["text", "audio"], ["text", "audio", "vision"]])
def test_output_shapes_with_two_and_three_streams(names):
    dims = {name: DIMS[name] for name in names}
    encoder = MultimodalTransformer(sum(dims.values()), dims, **SMALL)
    streams = len(names)
    assert encoder.output_dim == streams * (streams - 1) * SMALL["dim"] and not encoder.per_step
    unaligned = unaligned_batch({name: [4, 2, 6] for name in names},
                                {name: 6 + k for k, name in enumerate(names)})
    assert encoder(unaligned).shape == (3, encoder.output_dim)
    aligned = {"features": torch.randn(3, 9, sum(dims.values())),
               "mask": torch.arange(9)[None] < torch.tensor([9, 3, 5])[:, None]}
    assert encoder(aligned).shape == (3, encoder.output_dim)


def test_the_paper_settings_build_the_paper_model():
    dims = {"fasttext": 300, "egemaps": 88, "au": 35}
    encoder = MultimodalTransformer(423, dims)
    assert encoder.output_dim == 180  # 3 streams x 2 crossmodal outputs x 30 channels
    cross = encoder.crossmodal["fasttext"]["au"]
    assert len(cross.layers) == 5 and cross.layers[0].attention.num_heads == 5
    assert len(encoder.memory["au"].layers) == 5 and encoder.memory["au"].dim == 60
    projection = encoder.projections["fasttext"]
    assert projection.kernel_size == (1,) and projection.out_channels == 30
    assert projection.bias is None


def test_padding_does_not_change_the_encoding():
    """Each item alone, unpadded, encodes as it does in a padded batch (eval mode)."""
    torch.manual_seed(0)
    encoder = MultimodalTransformer(15, DIMS, **SMALL).eval()
    lengths = {"text": [3, 6, 1], "audio": [8, 2, 5], "vision": [4, 4, 7]}
    batch = unaligned_batch(lengths, {"text": 9, "audio": 11, "vision": 7})
    together = encoder(batch)
    for row in range(3):
        alone = encoder(item(batch, row))[0]
        torch.testing.assert_close(together[row], alone, rtol=1e-4, atol=1e-5)
    # Evaluation runs in inference mode, where attention may take PyTorch's fast path.
    with torch.inference_mode():
        torch.testing.assert_close(encoder(batch), together, rtol=1e-4, atol=1e-5)


def test_aligned_padding_does_not_change_the_encoding():
    torch.manual_seed(0)
    encoder = MultimodalTransformer(15, DIMS, **SMALL).eval()
    mask = torch.arange(12)[None] < torch.tensor([12, 5])[:, None]
    features = torch.randn(2, 12, 15).masked_fill(~mask[..., None], -30.0)
    together = encoder({"features": features, "mask": mask})
    alone = encoder({"features": features[1:, :5], "mask": mask[1:, :5]})
    torch.testing.assert_close(together[1], alone[0], rtol=1e-4, atol=1e-5)


def test_every_stream_reaches_the_encoding():
    """Changing the real rows of any one stream changes the encoding; its padding does not."""
    torch.manual_seed(0)
    encoder = MultimodalTransformer(15, DIMS, **SMALL).eval()
    batch = unaligned_batch({"text": [3, 5], "audio": [6, 2], "vision": [4, 4]},
                            {"text": 7, "audio": 6, "vision": 4})
    before = encoder(batch)
    for name in DIMS:
        changed = {**batch, "modalities": dict(batch["modalities"])}
        x = batch["modalities"][name].clone()
        x[0, 0] += 1.0
        changed["modalities"][name] = x
        assert not torch.allclose(encoder(changed)[0], before[0])
        torch.testing.assert_close(encoder(changed)[1], before[1])


def test_an_item_without_rows_in_a_stream_stays_finite():
    torch.manual_seed(0)
    encoder = MultimodalTransformer(15, DIMS, **SMALL)
    batch = unaligned_batch({"text": [4, 0, 2], "audio": [0, 3, 5], "vision": [0, 0, 1]})
    out = encoder(batch)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)
    # What an empty stream's padding holds does not matter.
    encoder.eval()
    noisy = {**batch, "modalities": {name: x.clone() for name, x in batch["modalities"].items()}}
    noisy["modalities"]["vision"][:2] = -7.0
    torch.testing.assert_close(encoder(noisy)[:2], encoder(batch)[:2])


def test_positions_are_scaled_sinusoids_from_one():
    table = sinusoidal_positions(4, 6)
    frequencies = torch.exp(-np.log(10000.0) / 2 * torch.arange(3.0))
    angles = torch.arange(1.0, 5.0)[:, None] * frequencies
    torch.testing.assert_close(table, torch.cat([angles.sin(), angles.cos()], dim=1))
    assert sinusoidal_positions(3, 5)[:, -1].eq(0).all()


def test_a_stack_embeds_scaled_inputs_with_their_own_positions():
    """Queries and keys of different lengths each get positions 1..L of their own sequence."""
    torch.manual_seed(0)
    stack = TransformerStack(8, heads=2, layers=1, embed_dropout=0.0).eval()
    x = torch.randn(1, 3, 8)
    expected = 8 ** 0.5 * x + sinusoidal_positions(3, 8)
    torch.testing.assert_close(stack._embed(x), expected)
    out = stack(x, torch.zeros(1, 5, dtype=torch.bool), torch.randn(1, 5, 8))
    assert out.shape == (1, 3, 8)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"feature_dims": None}, "needs feature_dims"),
    ({"feature_dims": {"text": 7}, "input_dim": 7}, "two or more"),
    ({"input_dim": 16}, "add up to 15"),
    ({"heads": 4}, "heads do not divide"),
])
def test_bad_settings_are_refused(kwargs, message):
    settings = {"input_dim": 15, "feature_dims": DIMS, **SMALL, **kwargs}
    with pytest.raises(ValueError, match=message):
        MultimodalTransformer(**settings)


def test_a_batch_without_a_stream_is_refused():
    encoder = MultimodalTransformer(15, DIMS, **SMALL)
    batch = unaligned_batch({"text": [2], "audio": [2]})
    with pytest.raises(ValueError, match=r"no rows of \['vision'\]"):
        encoder(batch)
    with pytest.raises(ValueError, match="width 14"):
        encoder({"features": torch.randn(1, 3, 14), "mask": torch.ones(1, 3, dtype=torch.bool)})


# -- unaligned topic inputs -------------------------------------------------------------------


def test_rows_are_grouped_by_their_video_and_segment():
    # Video 0 has segments 1 and 2, video 1 has segment 1; rows interleave, and rows of a
    # segment the store does not keep (video 1, segment 9) belong to none.
    row_video = np.array([0, 0, 0, 0, 1, 1, 1])
    row_segment = np.array([1, 2, 1, 2, 1, 9, 1])
    grouped = group_by_segment(row_video, row_segment, np.array([0, 0, 1, 1]),
                               np.array([1, 2, 1, 5]))
    bounds = zip(grouped.offsets[:-1], grouped.offsets[1:], strict=True)
    rows = [grouped.index[a:b].tolist() for a, b in bounds]
    assert rows == [[0, 2], [1, 3], [4, 6], []]


FT_GE_AU = ["fasttext", "egemaps", "au"]


def unaligned_module(store: Path, **kwargs) -> MuseDataModule:
    return MuseDataModule(str(store), "topic", FT_GE_AU, alignment="unaligned",
                          segment_length=40, unaligned_lengths={"fasttext": 12}, **kwargs)


def test_unaligned_items_are_each_sets_own_rows_of_the_segment(demo_stores):
    store = demo_stores["topic"]
    dm = unaligned_module(store, batch_size=4, normalize=False)
    assert dm.stream_lengths == {"fasttext": 12, "egemaps": 40, "au": 40}
    assert dm.feature_dims == {"fasttext": 300, "egemaps": 88, "au": 35}
    checked = 0
    with h5py.File(store) as f:
        video_ids = f["videos/id"][()]
        for partition in ("train", "devel", "test"):
            for entry in dm.dataset(partition):
                video = int(np.flatnonzero(video_ids == entry["video_id"])[0])
                for name, rows in entry["modalities"].items():
                    table = f[f"unaligned/{name}"]
                    first, last = table["video_offsets"][video:video + 2]
                    own = np.flatnonzero(table["segment_id"][first:last] == entry["segment_id"])
                    expected = table[f"features/{name}"][first:last][own][:dm.stream_lengths[name]]
                    np.testing.assert_array_equal(rows, expected)
                    checked += len(rows)
    assert checked > 0
    # The sets differ in their rows per segment: words, 250 ms steps, frames with a face.
    batch = next(iter(dm.predict_dataloader("devel")))
    lengths = {name: mask.sum(dim=1) for name, mask in batch["modality_masks"].items()}
    assert len({tuple(n.tolist()) for n in lengths.values()}) == 3
    for name, x in batch["modalities"].items():
        mask = batch["modality_masks"][name]
        assert x.shape[:2] == mask.shape and x.shape[1] == int(lengths[name].max())
        assert torch.equal(mask, torch.arange(mask.shape[1]) < lengths[name][:, None])
        assert (x[~mask] == 0).all()
    assert {"labels", "video_id", "segment_id", "text"} <= batch.keys()
    assert "features" not in batch


def test_unaligned_normalisation_uses_each_sets_train_rows(demo_stores):
    store = demo_stores["topic"]
    dm = unaligned_module(store, batch_size=4, normalize=True)
    raw = unaligned_module(store, batch_size=4, normalize=False)
    with h5py.File(store) as f:
        train = np.flatnonzero(f["videos/partition"].asstr()[()] == "train")
        for name, stream in dm.dataset("train").streams.items():
            offsets = f[f"unaligned/{name}/video_offsets"][()]
            features = f[f"unaligned/{name}/features/{name}"]
            rows = np.concatenate([features[a:b] for a, b in
                                   zip(offsets[train], offsets[train + 1], strict=True)])
            np.testing.assert_allclose(stream.normalizer.mean, rows.mean(axis=0), rtol=1e-5,
                                       atol=1e-5)
            std = np.where(rows.std(axis=0) > 0, rows.std(axis=0), 1.0)
            np.testing.assert_allclose(stream.normalizer.std, std, rtol=1e-4)
            entry, plain = dm.dataset("devel")[0], raw.dataset("devel")[0]
            np.testing.assert_allclose(entry["modalities"][name],
                                       (plain["modalities"][name] - rows.mean(axis=0)) / std,
                                       rtol=1e-4, atol=1e-4)


def test_unknown_alignment_lists_the_choices(demo_stores):
    with pytest.raises(ValueError, match="fasttext_aligned, unaligned"):
        MuseDataModule(demo_stores["topic"], "topic", FT_GE_AU, alignment="words")


def test_a_feature_set_without_an_unaligned_table_names_it(demo_stores):
    dm = MuseDataModule(demo_stores["topic"], "topic", ["fasttext", "xception"],
                        alignment="unaligned")
    with pytest.raises(StoreError, match=r"topic.h5: no feature xception in `unaligned/xception`"):
        dm.setup()


def test_an_unaligned_encoder_trains_and_predicts_every_segment(demo_stores):
    pl.seed_everything(0)
    dm = unaligned_module(demo_stores["topic"], batch_size=4, targets=["topic"])
    module = MuseModule(
        {"_target_": "muse.models.mult.MultimodalTransformer", "feature_dims": dm.feature_dims,
         **SMALL}, dm.feature_dim, "topic",
        [{"name": "topic", "kind": "classes", "num_classes": 10}], ["topic"],
        {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})
    trainer = make_trainer(max_epochs=1)
    trainer.fit(module, dm)
    outputs = trainer.predict(module, dataloaders=dm.predict_dataloader("devel"))
    frame = dm.predictions_frame(outputs, [o["predictions"] for o in outputs])
    assert len(frame) == len(dm.dataset("devel"))
    assert not frame[["id", "segment_id"]].duplicated().any()


# -- learning the planted topic ---------------------------------------------------------------


def topic_majority_score(dm: MuseDataModule) -> float:
    """The devel topic score of always predicting the most frequent train topic."""
    def topics(partition: str) -> np.ndarray:
        return np.array([entry["labels"][0] for entry in dm.dataset(partition)])

    train, devel = topics("train"), topics("devel")
    majority = np.bincount(train[train >= 0]).argmax()
    return classification_scores(devel, np.full(len(devel), majority))["score"]


class DevelScores(pl.Callback):
    """The devel score of every epoch (validation has run when a training epoch ends)."""

    def __init__(self) -> None:
        self.scores: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.scores.append(float(trainer.callback_metrics["devel/score"]))


def test_mmt_learns_topics_well_above_the_majority_class(learning_package):
    """The paper's model (30 channels, 5 layers, 5 heads, MulT's dropouts, Adam 1e-3, clip 0.8)
    on the three feature sets aggregated per word, judged like the harness judges a run: by
    its best devel epoch. Smaller batches than the paper's 16 give the few train segments more
    steps (the demo-sized packages have far fewer segments than MuSe-CaR's ~3000)."""
    dm = MuseDataModule(str(learning_package[0]["topic"]), "topic", FT_GE_AU, targets=["topic"],
                        alignment="fasttext_aligned", segment_length=220, normalize=True,
                        batch_size=4)
    pl.seed_everything(0)
    module = MuseModule(
        {"_target_": "muse.models.mult.MultimodalTransformer", "feature_dims": dm.feature_dims},
        dm.feature_dim, "topic", [{"name": "topic", "kind": "classes", "num_classes": 10}],
        ["topic"], {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3})
    epochs = DevelScores()
    make_trainer(max_epochs=6, gradient_clip_val=0.8, callbacks=[epochs]).fit(module, dm)
    assert len(epochs.scores) == 6
    assert max(epochs.scores) >= topic_majority_score(dm) + 25


# -- train.py ---------------------------------------------------------------------------------


QUICK = ["task=topic", "model=mmt", "trainer.enable_progress_bar=false",
         "trainer.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def topic_run(demo_stores, tmp_path_factory):
    """train.py's function: the topic model alone, on unaligned inputs, for two epochs."""
    root = tmp_path_factory.mktemp("mmt_run")
    cfg = compose(*QUICK, "model.targets=[topic]", "data.alignment=unaligned",
                  "trainer.max_epochs=2", root=root, data=demo_stores["topic"].parent)
    return cfg, train(cfg)


def test_a_run_reloads_from_its_checkpoint_with_its_devel_score(topic_run):
    cfg, result = topic_run
    client = MlflowClient(cfg.logger.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["model"] == "mmt"
    params = run.data.params
    assert params["model.encoder.layers"] == "5" and params["data.segment_length"] == "220"
    best = max(m.value for m in client.get_metric_history(result.run_id, "devel/score"))
    checkpoint = result.best_checkpoint
    module = MuseModule.load_from_checkpoint(checkpoint, map_location="cpu")
    assert module.encoder.feature_dims == {"egemaps": 88, "fasttext": 300, "au": 35}
    datamodule = MuseDataModule.load_from_checkpoint(checkpoint)
    assert datamodule.table == "unaligned"
    assert datamodule.stream_lengths == {"egemaps": 220, "fasttext": 170, "au": 220}
    (reloaded,) = make_trainer().validate(module, datamodule, verbose=False)
    assert reloaded["devel/score"] == pytest.approx(best, abs=1e-4)


def test_a_per_target_run_writes_a_submission_the_scorer_accepts(demo_stores, demo_package,
                                                                  tmp_path, capsys):
    # One small layer: this is about the harness, not the model.
    cfg = compose(*QUICK, "trainer.max_epochs=1", "model.encoder.layers=1", root=tmp_path,
                  data=demo_stores["topic"].parent)
    result = train(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    children = client.search_runs([client.get_run(result.run_id).info.experiment_id],
                                  filter_string=f"tags.`{PARENT_TAG}` = '{result.run_id}'")
    assert sorted(child.data.tags[TARGET_TAG] for child in children) == [
        "arousal", "topic", "valence"]
    test_csv = Path(result.predictions) / "test.csv"
    scored = score_with_cli("topic", test_csv, demo_package, capsys)
    assert scored == result.test and scored["n_rows"] == len(pd.read_csv(test_csv))
    assert set(pd.read_csv(test_csv).columns) == {
        "id", "segment_id", "prediction_arousal", "prediction_valence", "prediction_topic"}


def test_mmt_is_topic_only(demo_stores, tmp_path):
    cfg = compose("task=wild", "model=mmt", root=tmp_path, data=demo_stores["wild"].parent)
    with pytest.raises(MuseError, match="task=topic only"):
        train(cfg)
