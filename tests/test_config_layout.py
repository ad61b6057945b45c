"""The config layout: each training setting has one key, each model config sets its own
defaults in them (experiment=..., sweep rows and the command line win), the datamodule and
the module are instantiated from their `_target_` nodes with the run's data facts filled in
by muse.runs.builders, and config hashes are versioned with the layout."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from pathlib import Path

import pytest
from composing import compose
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, ListConfig, OmegaConf
from store_factory import write_continuous_store, write_topic_store

from muse.data.datamodule import MuseDataModule
from muse.module import MuseModule
from muse.runs import tracking
from muse.runs.builders import STORE_LOCATION, build_datamodule, build_module
from muse.runs.train import finished_result
from muse.store.prepare.model_inputs import model_inputs

MODELS = ("lstm_att", "e2e", "e2e_multitask", "mmt", "albert", "svm")
# Where each training setting lives now; none of them may be under `model` any more.
SETTINGS = {"max_epochs": "trainer.max_epochs", "gradient_clip_val": "trainer.gradient_clip_val",
            "patience": "callbacks.early_stopping.patience", "batch_size": "data.batch_size",
            "hop": "data.hop", "normalize": "data.normalize",
            "segment_length": "data.segment_length", "unaligned_lengths": "data.unaligned_lengths"}


def compose_train(*overrides: str) -> DictConfig:
    return compose(*overrides, root=Path("/tmp/muse"))


def settings(cfg: DictConfig) -> tuple:
    return tuple(OmegaConf.select(cfg, key) for key in
                 ("trainer.max_epochs", "trainer.gradient_clip_val",
                  "callbacks.early_stopping.patience", "data.batch_size", "data.hop",
                  "data.normalize", "model.optimizer.lr"))


@pytest.mark.parametrize("model", MODELS)
def test_no_training_setting_is_left_in_the_model_node(model: str) -> None:
    task = "trust" if model == "e2e_multitask" else "topic"
    cfg = compose_train(f"task={task}", f"model={model}")
    assert not set(SETTINGS) & set(cfg.model), f"model={model}: set them at {SETTINGS}"


@pytest.mark.parametrize(("overrides", "expected"), [
    # (max_epochs, clip, patience, batch, hop, normalize, lr): each model's own defaults
    ((), (60, 1.0, 15, 50, 10, True, 3e-3)),
    (("task=topic",), (100, 1.0, 30, 10, 10, True, 3e-3)),  # conf/model_task/lstm_att_topic
    (("model=e2e",), (10, None, 8, 2, 50, True, 1e-3)),
    (("task=trust", "model=e2e_multitask"), (10, None, 8, 2, 50, True, 1e-3)),
    (("task=topic", "model=mmt"), (20, 0.8, 8, 16, 50, True, 3e-3)),
    (("task=topic", "model=albert"), (3, 1.0, 3, 12, 50, False, 1e-5)),
    # the paper's settings over them, by experiment and by sweep row
    (("experiment=paper/lstm_att_wild",), (15, 1.0, 10, 50, 50, True, 1e-4)),
    (("experiment=paper/lstm_att_topic",), (15, 1.0, 10, 20, 50, True, 1e-4)),
    (("experiment=paper/e2e_trust",), (15, None, 50, 10, 50, True, 8e-5)),
    (("experiment=paper/mmt_topic",), (20, 0.8, 20, 16, 50, True, 1e-3)),
    (("sweep=table2_wild", "row=e2e"), (50, None, 50, 10, 50, True, 8e-5)),
    (("sweep=table3_topic", "row=lstm_att-egemaps"), (15, 1.0, 10, 20, 50, True, 1e-4)),
    # the command line wins over the model, the experiment and the per-task setting
    (("experiment=paper/lstm_att_topic", "trainer.max_epochs=3", "data.batch_size=7",
      "callbacks.early_stopping.patience=2", "data.hop=5"), (3, 1.0, 2, 7, 5, True, 1e-4)),
    (("task=topic", "model=mmt", "trainer.gradient_clip_val=0.5"),
     (20, 0.5, 8, 16, 50, True, 3e-3)),
])
def test_each_model_brings_its_settings_and_what_comes_later_wins(overrides, expected) -> None:
    assert settings(compose_train(*overrides)) == expected


def test_the_datamodule_is_instantiated_from_the_data_node(tmp_path: Path) -> None:
    store = write_continuous_store(tmp_path / "wild.h5").path
    cfg = compose_train("data.window=20", "data.hop=7", "data.batch_size=3",
                        "data.eval_window=null", "data.memory_budget_mb=1", "seed=5",
                        "features.names=[egemaps,au]")
    datamodule = build_datamodule(cfg, store)
    assert type(datamodule) is MuseDataModule
    assert (datamodule.window, datamodule.hop, datamodule.eval_window, datamodule.batch_size) == (
        20, 7, None, 3)
    assert (datamodule.features, datamodule.targets, datamodule.task) == (
        ["egemaps", "au"], ("arousal", "valence"), "wild")
    hparams = dict(datamodule.hparams)
    assert (hparams["store_path"], hparams["seed"], hparams["memory_budget_mb"]) == (
        str(store), 5, 1)
    # checkpoints keep plain containers (weights-only loading refuses OmegaConf's)
    assert not any(isinstance(v, DictConfig | ListConfig) for v in hparams.values())
    # every data key is the datamodule's, but those saying where the store is
    arguments = set(inspect.signature(MuseDataModule).parameters)
    assert set(cfg.data) - {"_target_", *STORE_LOCATION} <= arguments


def test_the_module_is_instantiated_from_the_model_node_with_the_data_facts(
        tmp_path: Path) -> None:
    store = write_topic_store(tmp_path / "topic.h5").path
    cfg = compose_train("task=topic", "model=mmt", "features.names=[egemaps,fasttext]",
                        "task.balanced_class_weights=true", "model.encoder.dim=10",
                        "model.encoder.heads=2", "model.encoder.layers=1")
    datamodule = build_datamodule(cfg, store, ["topic"])
    module = build_module(cfg, datamodule)
    assert type(module) is MuseModule
    hparams = dict(module.hparams)
    assert hparams["encoder"]["_target_"] == "muse.models.mult.MultimodalTransformer"
    assert hparams["encoder"]["feature_dims"] == {"egemaps": 3, "fasttext": 5}
    assert (hparams["encoder"]["dim"], hparams["input_dim"], hparams["task"]) == (10, 8, "topic")
    assert hparams["scheduler"]["monitor"] == "devel/score"
    [target] = hparams["targets"]
    assert (target["name"], target["kind"], target["num_classes"]) == ("topic", "classes", 10)
    assert len(target["class_weights"]) == 10
    assert not any(isinstance(v, DictConfig | ListConfig) for v in hparams.values())
    assert type(hparams["encoder"]) is dict and type(hparams["targets"]) is list


def old_layout_hash(cfg: DictConfig) -> str:
    """config_hash as computed before the layout was hashed (its tree with the marker gone)."""
    tree = {k: v for k, v in tracking.resolved(cfg).items() if k not in tracking._NOT_HASHED}
    tree["trainer"] = {k: v for k, v in tree["trainer"].items()
                       if k not in tracking._NOT_HASHED_TRAINER}
    tree["callbacks"] = {
        name: {k: v for k, v in node.items() if k not in tracking._NOT_HASHED_CALLBACK_KEYS}
        for name, node in tree["callbacks"].items()
        if name not in tracking._NOT_HASHED_CALLBACKS}
    for key in ("dir", "num_workers", "_target_"):
        tree["data"].pop(key, None)
    tree["model"].get("module", {}).pop("_target_", None)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


@pytest.mark.parametrize("overrides", [(), ("task=topic", "model=svm")])
def test_the_layout_is_part_of_the_hash(overrides) -> None:
    cfg = compose_train(*overrides)
    assert tracking.config_hash(cfg) != old_layout_hash(cfg)


def test_a_run_finished_under_an_earlier_layout_is_reported_not_skipped(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cfg = compose_train("skip_finished=true", f"logger.tracking_uri={uri}",
                        f"paths.log_dir={tmp_path}")
    client = tracking.open_store(uri)
    experiment = client.create_experiment(cfg.task.experiment_name,
                                          artifact_location=str(tmp_path / "artifacts"))
    name = tracking.run_name(cfg)

    def finished(tags: dict) -> str:
        run = client.create_run(experiment, run_name=name, tags=tags)
        client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    earlier = finished({tracking.CONFIG_HASH_TAG: old_layout_hash(cfg)})
    with caplog.at_level(logging.WARNING, logger="muse.runs.train"):
        assert finished_result(cfg) is None  # trains again: the hashes cannot be compared
    assert earlier in caplog.text and "earlier config layout" in caplog.text
    assert [run.info.run_id for run in tracking.earlier_layout_runs(
        uri, cfg.task.experiment_name, name)] == [earlier]

    today = finished(tracking.run_tags(cfg))
    assert MlflowClient(uri).get_run(today).data.tags[tracking.CONFIG_LAYOUT_TAG] == "2"
    result = finished_result(cfg)
    assert result is not None and result.skipped and result.run_id == today


def test_the_shared_module_part_is_not_listed_as_a_model() -> None:
    assert {inputs.model for inputs in model_inputs()} == set(MODELS)


def test_the_module_node_does_not_repeat_the_model_in_the_run_params() -> None:
    params = tracking.config_params(compose_train("model=lstm_att"))
    assert params["model.encoder.hidden_size"] == "40"
    assert params["model.module._target_"] == "muse.module.MuseModule"
    assert [key for key in params if key.startswith("model.module.")] == ["model.module._target_"]
