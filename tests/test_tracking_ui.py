"""What a run leaves for the MLflow UI: its name, its datasets, system metrics, the uploaded
checkpoint, the experiment's kind and saved view, the link to the runs table, and the logger
built from conf/logger."""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import pytest
from composing import compose
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf

from muse.runs import naming, tracking
from muse.runs.lifecycle import system_metrics
from muse.runs.train import train

FAST = ["debug=short", "data.batch_size=8", "trainer.max_epochs=1"]


def config(root: Path, data_dir: Path, *overrides: str) -> DictConfig:
    return compose(*overrides, root=root, data=data_dir)


# Run names


def test_a_name_shows_the_overrides_that_change_what_a_run_computes() -> None:
    overrides = ["model=lstm_att", "features=ge_ft", "seed=3", "paths.root_dir=/x",
                 "data.dir=/data", "hydra/launcher=basic", "logger.log_checkpoints=true",
                 "trainer.devices=2", "hparams_search.n_trials=40",
                 "model.optimizer.lr=0.001", "data.window=100",
                 "debug=short"]
    assert naming.run_name("lstm_att", "ge_ft", 3, overrides, "0123456789abcdef") == (
        "lstm_att-ge_ft-s3 lr=0.001 window=100 debug=short")


def test_two_runs_of_a_learning_rate_sweep_are_told_apart() -> None:
    names = {naming.run_name("lstm_att", "ge_ft", 0, [f"model.optimizer.lr={lr}"], "ab" * 8)
             for lr in ("1e-3", "1e-4")}
    assert names == {"lstm_att-ge_ft-s0 lr=1e-3", "lstm_att-ge_ft-s0 lr=1e-4"}


def test_a_name_without_overrides_is_the_base_name() -> None:
    assert naming.run_name("svm", "egemaps", 42, ["sweep=table4_emotion",
                                                 "row=svm-egemaps"], "0" * 16) == "svm-egemaps-s42"


def test_equal_last_parts_keep_as_many_parts_as_tell_them_apart() -> None:
    forms = naming.short_forms(["model.encoder.dropout=0.1", "model.head.dropout=0.2",
                                "~trainer.gradient_clip_val", "+data.extra=1"])
    assert forms == ["encoder.dropout=0.1", "head.dropout=0.2", "~gradient_clip_val",
                     "extra=1"]


def test_many_overrides_are_shortened_with_the_config_hash() -> None:
    overrides = [f"model.k{i}=1" for i in range(6)]
    name = naming.run_name("lstm_att", "ge_ft", 0, overrides, "fedcba9876543210")
    assert name == "lstm_att-ge_ft-s0 k0=1 k1=1 k2=1 k3=1 +2 #fedcba"
    assert len(name) <= naming.MAX_LENGTH


# The logger, the experiment and the link


def test_the_logger_is_built_from_its_config_node_with_the_run_facts(
        tmp_path: Path, demo_stores: dict[str, Path]) -> None:
    cfg = config(tmp_path, demo_stores["wild"].parent, "+logger.prefix=fit")
    assert cfg.logger._target_ == "pytorch_lightning.loggers.MLFlowLogger"
    assert cfg.logger.system_metrics is True and cfg.logger.log_checkpoints is False
    logger = tracking.make_logger(cfg)
    assert logger._prefix == "fit"  # any logger argument set in the config reaches it
    run = logger.experiment.get_run(logger.run_id)
    assert run.info.run_name == "lstm_att-ge_ft-s42"
    assert run.data.tags["task"] == "wild" and run.data.tags["model"] == "lstm_att"
    experiment = logger.experiment.get_experiment(run.info.experiment_id)
    assert experiment.name == "MuSe-Wild"
    assert Path(experiment.artifact_location.removeprefix("file://")) == (
        tmp_path / "logs" / "artifacts").resolve()
    # A model-training experiment, with the saved view of the runs table muse links to.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    view = json.loads(experiment.tags["mlflow.sharedViewState.muse-scores"])
    state = json.loads(view["state"])
    assert view["name"] == "muse: scores" and isinstance(view["createdAt"], int)
    assert {"metrics.`best/devel/score`", "metrics.`best/test/score`", "attributes.`Dataset`",
            "tags.`task`", "tags.`model`", "tags.`features`", "tags.`seed`"} == set(
                state["selectedColumns"])
    assert state["orderByKey"] == "metrics.`best/devel/score`" and not state["orderByAsc"]
    # The link to that table, after the command that serves the local store.
    assert tracking.ui_command(cfg.logger.tracking_uri, "MuSe-Wild") == (
        f"mlflow ui --backend-store-uri {cfg.logger.tracking_uri}, then open "
        f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}/runs?"
        "workflowType=machine_learning&viewStateShareKey=muse-scores")


def test_an_experiment_made_before_gets_the_saved_view(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    old = client.create_experiment("MuSe-Trust")
    assert tracking.ensure_experiment(uri, "MuSe-Trust", str(tmp_path)) == old
    assert "mlflow.sharedViewState.muse-scores" in client.get_experiment(old).tags


def test_two_jobs_adding_the_saved_view_at_once_both_go_on(
        tracking_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The jobs of a sweep start together: when another job's insert of the same view tag wins,
    the losing insert (MLflow raises) is not a failed job."""
    uri = f"sqlite:///{tracking_db}"
    client = MlflowClient(uri)
    old = client.create_experiment("MuSe-Trust")
    set_tag = MlflowClient.set_experiment_tag

    def the_other_job_wins(self, experiment_id, key, value):
        set_tag(self, experiment_id, key, value)  # the other job's tag is in
        raise MlflowException("UNIQUE constraint failed: experiment_tags.key")

    monkeypatch.setattr(MlflowClient, "set_experiment_tag", the_other_job_wins)
    assert tracking.ensure_experiment(uri, "MuSe-Trust", str(tmp_path)) == old
    assert "mlflow.sharedViewState.muse-scores" in client.get_experiment(old).tags


def test_a_new_experiment_is_made_with_its_view_in_one_step(
        tracking_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_second_write(*args):
        raise AssertionError("the view is set apart from the experiment's creation")

    monkeypatch.setattr(MlflowClient, "set_experiment_tag", no_second_write)
    uri = f"sqlite:///{tracking_db}"
    created = tracking.ensure_experiment(uri, "MuSe-Wild", str(tmp_path))
    tags = MlflowClient(uri).get_experiment(created).tags
    assert "mlflow.sharedViewState.muse-scores" in tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"


def test_two_jobs_logging_the_same_store_at_once_both_record_it(
        tracking_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "wild.h5"
    with h5py.File(store, "w") as file:
        file.attrs["fingerprint"] = "0123456789abcdef0123"
        file.attrs["package"] = "/data/muse2020"
    client = MlflowClient(f"sqlite:///{tracking_db}")
    experiment = client.create_experiment("MuSe-Wild")
    other, ours = (client.create_run(experiment).info.run_id for _ in range(2))
    log_inputs = MlflowClient.log_inputs
    calls = []

    def the_other_job_inserts_first(self, run_id, datasets=None, models=None):
        calls.append(run_id)
        if len(calls) == 1:  # the other job's insert of the same datasets wins the race
            log_inputs(self, other, datasets)
            raise MlflowException("UNIQUE constraint failed: datasets.experiment_id")
        return log_inputs(self, run_id, datasets)

    monkeypatch.setattr(MlflowClient, "log_inputs", the_other_job_inserts_first)
    tracking.log_datasets(client, ours, store)
    for run_id in (other, ours):
        names = sorted(d.dataset.name for d in client.get_run(run_id).inputs.dataset_inputs)
        assert names == ["wild.h5/devel", "wild.h5/test", "wild.h5/train"]


def test_a_server_link_opens_the_runs_table() -> None:
    assert tracking.runs_table_url("http://host:5000/", "7") == (
        "http://host:5000/#/experiments/7/runs?workflowType=machine_learning"
        "&viewStateShareKey=muse-scores")


# What a run records


@pytest.fixture(scope="module")
def recorded(demo_stores: dict[str, Path], demo_package: Path,
             tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ui_run")
    cfg = config(root, demo_stores["wild"].parent, *FAST, "logger.log_checkpoints=true",
                 "logger.system_metrics_interval_s=0.5")
    result = train(cfg)
    client = MlflowClient(cfg.logger.tracking_uri)
    return {"cfg": cfg, "result": result, "client": client,
            "run": client.get_run(result.run_id)}


def test_a_run_records_its_store_as_train_devel_and_test_datasets(
        recorded: dict, demo_stores: dict[str, Path], demo_package: Path) -> None:
    with h5py.File(demo_stores["wild"], "r") as store:
        fingerprint = store.attrs["fingerprint"]
        assert store.attrs["package"] == str(demo_package.resolve())
    found = {}
    for item in recorded["run"].inputs.dataset_inputs:
        (context,) = [tag.value for tag in item.tags if tag.key == "mlflow.data.context"]
        found[context] = item.dataset
    assert set(found) == {"train", "devel", "test"}
    for context, dataset in found.items():
        assert dataset.name == f"wild.h5/{context}"
        assert dataset.digest == fingerprint[:16]
        assert json.loads(dataset.source) == {"uri": str(demo_package.resolve())}


def test_a_run_records_system_metrics_by_default(recorded: dict) -> None:
    metrics = recorded["run"].data.metrics
    assert metrics["system/cpu_utilization_percentage"] >= 0
    assert metrics["system/system_memory_usage_megabytes"] > 0


def test_log_checkpoints_uploads_the_best_checkpoint(recorded: dict, tmp_path: Path) -> None:
    client, run_id = recorded["client"], recorded["result"].run_id
    best = Path(recorded["result"].best_checkpoint)
    assert [a.path for a in client.list_artifacts(run_id, "checkpoints")] == [
        f"checkpoints/{best.name}"]
    (fetched,) = tracking.fetch_checkpoints(client, run_id, [str(best)], tmp_path)
    assert fetched.read_bytes() == best.read_bytes()


def test_without_log_checkpoints_nothing_is_uploaded_nor_fetched(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    run_id = client.create_run(client.create_experiment(
        "x", artifact_location=str(tmp_path / "artifacts"))).info.run_id
    checkpoint = tmp_path / "best.ckpt"
    checkpoint.write_bytes(b"weights")
    tracking.record_best_checkpoints(client, run_id, [str(checkpoint)], upload=False)
    assert client.get_run(run_id).data.tags["muse.best_checkpoint"] == str(checkpoint)
    assert client.list_artifacts(run_id) == []
    assert tracking.fetch_checkpoints(client, run_id, [str(checkpoint)], tmp_path / "f") is None


@pytest.mark.parametrize("enabled", [True, False])
def test_system_metrics_are_sampled_only_when_enabled(tmp_path: Path, enabled: bool) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("x")).info.run_id
    cfg = DictConfig({"logger": {"tracking_uri": uri, "system_metrics": enabled,
                                 "system_metrics_interval_s": 0.2}})
    with system_metrics(cfg, run_id, resumed=False):
        time.sleep(1.5)
    logged = {key for key in client.get_run(run_id).data.metrics if key.startswith("system/")}
    assert bool(logged) is enabled


def test_a_link_to_a_store_that_does_not_exist_creates_no_database(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.db"
    link = tracking.ui_command(f"sqlite:///{missing}", "MuSe-Wild")
    assert "#/experiments?workflowType=machine_learning" in link
    assert not missing.exists()


def test_a_run_shorter_than_the_sampling_interval_still_has_system_metrics(
        tracking_db: Path, tmp_path: Path) -> None:
    uri = f"sqlite:///{tracking_db}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment(
        "x", artifact_location=str(tmp_path / "artifacts"))).info.run_id
    cfg = OmegaConf.create({"logger": {"system_metrics": True, "system_metrics_interval_s": 60,
                                       "tracking_uri": uri}})
    with system_metrics(cfg, run_id, resumed=False):
        pass  # ends long before the first 60 s sample
    assert client.get_run(run_id).data.metrics["system/system_memory_usage_megabytes"] > 0
