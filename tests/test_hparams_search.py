"""Optuna searches (conf/hparams_search/, muse.search): every search file composes into trials
that train, and a tiny 3-trial study on the demo stores, run in-process as `python search.py`
runs it, records one MLflow run per trial tagged with its study, continues after a Ctrl-C
without retraining what finished (the interrupted trial's run continues from its checkpoint),
trains nothing when run again, and records the best trial's overrides."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import yaml
from composing import compose
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf, open_dict
from optuna.trial import TrialState

from muse.errors import MuseError
from muse.module import MuseModule
from muse.runs import tracking
from muse.search import study as search_study
from muse.search.guard import SearchOnly
from muse.search.space import SearchSpace, override_text
from muse.search.study import Search, as_hydra_job, available, run_search

CONF = Path(__file__).parents[1] / "conf"
STUDY = "lstm_att_wild"
EXPERIMENTS = {"wild": "MuSe-Wild", "trust": "MuSe-Trust", "topic": "MuSe-Topic"}
# Two short epochs a trial; the search space is the real one.
TINY = ["hparams_search.n_trials=3", "trainer.max_epochs=2", "+trainer.limit_train_batches=3",
        "trainer.enable_progress_bar=false", "trainer.log_every_n_steps=1"]


def first_values(space: SearchSpace) -> dict:
    """Each parameter's lowest value or first choice."""
    return {p.name: p.args["choices"][0] if p.kind == "categorical" else p.args["low"]
            for p in space.params}


@pytest.mark.slow  # composes a trial of every search: seconds of CPU
@pytest.mark.parametrize("name", available(CONF))
def test_every_search_composes_into_trials_of_its_task(name: str, tmp_path: Path) -> None:
    search = Search.from_command_line(CONF, [f"hparams_search={name}",
                                             f"paths.root_dir={tmp_path}"])
    assert search.name == name and search.n_trials >= 8 and search.n_jobs == 1
    assert search.sampler_node["_target_"] == "optuna.samplers.TPESampler"
    assert search.sampler(offset=3).__class__ is optuna.samplers.TPESampler
    assert search.storage_url == f"sqlite:///{tmp_path}/logs/hparams_search/{name}/optuna.db"
    values = first_values(search.space)
    overrides = search.space.suggest(optuna.trial.FixedTrial(values))
    with search.trial_job(overrides, number=0) as job:
        model, task = name.rsplit("_", 1)
        assert (job.model.name, job.task.name) == (model, task)
        assert job.skip_finished is True and job.study == name and "hparams_search" not in job
        # The trials stay out of the experiments `muse report` reads.
        assert job.task.experiment_name == f"{EXPERIMENTS[task]}-search"
        for key, value in values.items():
            assert OmegaConf.select(job, key) == value
        assert job.paths.output_dir.endswith(f"hparams_search/{name}/trials/trial-0")


def test_a_search_space_names_what_is_wrong_with_it(tmp_path: Path) -> None:
    search = Search.from_command_line(CONF, ["hparams_search=lstm_att_wild",
                                             f"paths.root_dir={tmp_path}"])
    with as_hydra_job(search.composed) as job:
        groups = set(search.composed.hydra.runtime.choices)

        def space(params: dict) -> SearchSpace:
            return SearchSpace(params, job, groups, Path("conf/hparams_search/bad.yaml"))

        with pytest.raises(MuseError, match=r"bad.yaml: .*model.optimizer.lrr: the training "
                                            r"config has no key or group"):
            space({"model.optimizer.lrr": {"type": "float", "low": 1e-4, "high": 1e-2}})
        with pytest.raises(MuseError, match="type must be one of float, int, categorical"):
            space({"model.optimizer.lr": {"type": "loguniform", "low": 1e-4, "high": 1e-2}})
        with pytest.raises(MuseError, match=r"missing \['high'\], unknown \['hi'\]"):
            space({"model.optimizer.lr": {"type": "float", "low": 1e-4, "hi": 1e-2}})
        with pytest.raises(MuseError, match="model.optimizer.lr: .*low"):  # Optuna's own check
            space({"model.optimizer.lr": {"type": "float", "low": 1e-2, "high": 1e-4}})
        with pytest.raises(MuseError, match="reads back as another value"):
            space({"data.alignment": {"type": "categorical", "choices": ["1.5"]}})
        # A config group is a parameter too.
        assert space({"features": {"type": "categorical", "choices": ["egemaps"]}}).params


def test_a_search_needs_a_search_file_and_scores(tmp_path: Path) -> None:
    with pytest.raises(MuseError, match="python search.py hparams_search=<name> .*lstm_att_wild"):
        Search.from_command_line(CONF, [f"paths.root_dir={tmp_path}"])
    with pytest.raises(MuseError, match="debug=fast does not record"):
        Search.from_command_line(CONF, ["hparams_search=svm_topic", "debug=fast",
                                        f"paths.root_dir={tmp_path}"])


def test_train_py_refuses_a_search_config() -> None:
    cfg = compose("hparams_search=svm_topic", hydra=True)
    assert cfg.hydra.callbacks.search_only._target_ == "muse.search.guard.SearchOnly"
    for hook in (SearchOnly().on_run_start, SearchOnly().on_multirun_start):
        with pytest.raises(SystemExit, match="python search.py hparams_search=svm_topic"):
            hook(config=cfg)


def study_runs(root: Path) -> dict[str, object]:
    """{run id: run} of the MuSe-Wild search runs tagged with the study."""
    client = MlflowClient(f"sqlite:///{root}/logs/mlflow.db")
    experiment = client.get_experiment_by_name("MuSe-Wild-search")
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.{tracking.STUDY_TAG} = '{STUDY}'")
    return {run.info.run_id: run for run in runs}


def stored_trials(root: Path) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{root}/logs/hparams_search/{STUDY}/optuna.db"
    return optuna.load_study(study_name=STUDY, storage=storage).get_trials()


@pytest.fixture(scope="module")
def study(demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny study run three times: interrupted (Ctrl-C in the second trial's first epoch),
    continued, and run again once complete."""
    root = tmp_path_factory.mktemp("search")
    overrides = [f"hparams_search={STUDY}", f"data.dir={demo_stores['wild'].parent}",
                 f"paths.root_dir={root}", *TINY]
    steps: dict = {"root": root, "overrides": overrides}
    epochs_ended = []

    def ctrl_c_in_the_third_epoch(self) -> None:
        epochs_ended.append(self.current_epoch)
        if len(epochs_ended) == 3:  # trial 0 trains two epochs; this is trial 1's first
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MuseModule, "on_train_epoch_end", ctrl_c_in_the_third_epoch,
                      raising=False)
        with pytest.raises(KeyboardInterrupt):
            run_search(CONF, overrides)
    steps["runs_interrupted"], steps["trials_interrupted"] = study_runs(root), stored_trials(root)
    steps["best"] = run_search(CONF, overrides)
    steps["runs_continued"], steps["trials_continued"] = study_runs(root), stored_trials(root)

    def no_training(cfg) -> dict:
        raise AssertionError("a complete study trained again")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_study, "train", no_training)
        steps["best_again"] = run_search(CONF, overrides)
    steps["runs_again"], steps["trials_again"] = study_runs(root), stored_trials(root)
    return steps


def states(trials: list) -> list[TrialState]:
    return [trial.state for trial in trials]


def test_a_ctrl_c_stops_the_study_and_queues_its_trial_again(study: dict) -> None:
    trials = study["trials_interrupted"]
    assert states(trials) == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert trials[2].user_attrs[search_study.RETRY_OF] == 1
    runs = study["runs_interrupted"]
    assert sorted(run.info.status for run in runs.values()) == ["FINISHED", "KILLED"]
    assert {run.data.tags[tracking.TRIAL_TAG] for run in runs.values()} == {"0", "1"}


def test_the_same_command_continues_it_into_three_runs(study: dict) -> None:
    trials = study["trials_continued"]
    assert states(trials) == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE,
                              TrialState.COMPLETE]
    # The retry ran trial 1's values, and continued its killed run instead of a new one.
    assert trials[2].params == trials[1].params
    (killed,) = [run_id for run_id, run in study["runs_interrupted"].items()
                 if run.info.status == "KILLED"]
    assert trials[2].user_attrs[search_study.RUN_ID] == killed
    runs = study["runs_continued"]
    assert len(runs) == 3 and {run.info.status for run in runs.values()} == {"FINISHED"}
    assert set(study["runs_interrupted"]) < set(runs)  # trial 0's run was not trained again
    client = MlflowClient(f"sqlite:///{study['root']}/logs/mlflow.db")
    for trial in (trials[0], *trials[2:]):
        run = runs[trial.user_attrs[search_study.RUN_ID]]
        assert run.data.tags[tracking.TRIAL_TAG] == str(trial.number)
        assert run.data.tags[tracking.STUDY_TAG] == STUDY
        # The value Optuna optimised is the run's devel score, logged beside it.
        assert trial.value == run.data.metrics["best/devel/score"]
        assert run.data.metrics[search_study.OBJECTIVE_METRIC] == trial.value
        for name, value in trial.params.items():
            assert run.data.params[name] == str(value)
        epochs = {int(m.value) for m in client.get_metric_history(run.info.run_id, "epoch")}
        assert epochs == {0, 1}  # two epochs each, the resumed one too


def test_a_complete_study_trains_nothing_when_run_again(study: dict) -> None:
    assert len(study["trials_again"]) == 4
    assert states(study["trials_again"]) == states(study["trials_continued"])
    assert set(study["runs_again"]) == set(study["runs_continued"])
    assert study["best_again"] == study["best"]


def test_the_best_trial_is_recorded_with_the_command_that_trains_it(study: dict) -> None:
    best, trials = study["best"], study["trials_continued"]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    winner = max(complete, key=lambda t: t.value)
    assert (best["trial"], best["value"]) == (winner.number, winner.value)
    assert best["run_id"] == winner.user_attrs[search_study.RUN_ID]
    assert best["params"] == winner.params
    assert best["overrides"] == [override_text(k, v)
                                 for k, v in winner.params.items()]
    folder = study["root"] / "logs" / "hparams_search" / STUDY
    assert yaml.safe_load((folder / search_study.BEST_FILE).read_text()) == best
    # The command outside the search composes the configuration the best run trained, as a
    # regular run of MuSe-Wild.
    program, *overrides = best["command"].split()
    assert program == "python" and overrides[0] == "train.py"
    assert not any(text.startswith("hparams_search") for text in overrides)
    composed = compose(*overrides[1:], hydra=True)
    with as_hydra_job(composed) as cfg:
        assert cfg.task.experiment_name == "MuSe-Wild"
        with open_dict(cfg):  # what the search adds to every trial
            cfg.study, cfg.task.experiment_name = STUDY, "MuSe-Wild-search"
        digest = tracking.config_hash(cfg)
    run = study["runs_continued"][best["run_id"]]
    assert digest == run.data.tags[tracking.CONFIG_HASH_TAG]


def test_a_study_refuses_to_continue_with_another_configuration(study: dict) -> None:
    overrides = [*study["overrides"], "seed=7"]
    with pytest.raises(MuseError, match=f"study {STUDY} in .* started with another "
                                        "configuration"):
        run_search(CONF, overrides)
