"""An Optuna study whose trials are muse training runs (`python search.py hparams_search=...`).

The search file (conf/hparams_search/<name>.yaml) picks the task and the model and holds the
study's settings under `hparams_search`: `n_trials`, `n_jobs`, the sampler (TPE, seeded), the
storage and the search space (`muse.search.space`). A trial composes the training config as
`python train.py <the search's overrides> <the trial's values>` would, runs
`muse.runs.train.train` and returns the value `train.py` returns to Hydra sweepers: the task's
monitored devel score (MuSe-Topic: the mean of the topic and emotion scores).

* Records: a trial is an MLflow run of its task's search experiment (`MuSe-Wild-search`, ...,
  set by the search file: `muse report` reads the others), tagged `study` (part of its
  configuration, so of its config hash) and `trial`, with the optimised value as the metric
  `search/objective`. The study folder `logs/hparams_search/<study>/` holds the Optuna storage
  (`optuna.db`, SQLite, unless `hparams_search.storage` names a database server), each trial's
  run folder, `search.log` and `best.yaml`: the best trial's value, run and values, and the
  `python train.py` command that trains it again.
* Continuing: the same command continues the study. It runs only the trials missing from
  `n_trials` (finished and failed ones count); a trial stopped by Ctrl-C is retried first with
  the same values, and its run continues from its last checkpoint (trials run with
  `skip_finished`, so a configuration that finished is never trained twice); a trial whose
  process died without a word is retried once its heartbeat is older than the grace period.
  A study keeps the configuration and the space it started with: others are an error.
* Parallel: `n_jobs` worker processes share the storage, each with its own sampler seed.
"""

from __future__ import annotations

import copy
import logging
import multiprocessing
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState

from muse.errors import MuseError
from muse.runs import tracking
from muse.runs.result import RunResult
from muse.runs.train import train
from muse.search.space import SearchSpace

log = logging.getLogger(__name__)

OBJECTIVE_METRIC = "search/objective"
BEST_FILE = "best.yaml"
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"
# Optuna trial user attributes.
RETRY_OF = "retry_of"      # the number of the interrupted trial this one runs again
RUN_ID = "run_id"
VALUES = "overrides"       # the trial's values as training overrides
ERROR = "error"
# Optuna study user attributes: what a study must keep to be continued.
IDENTITY = ("config_hash", "space")


def objective_value(task: str, result: RunResult) -> float:
    """What `train.py` returns to a Hydra sweeper for this result; a run without one fails."""
    value = result.objective(task)
    if value is None:
        raise MuseError(f"run {result.run_id} has no devel score to optimise (devel "
                        "labels masked, or no scored target learned)")
    return float(value)


@contextmanager
def as_hydra_job(composed: DictConfig) -> Iterator[DictConfig]:
    """The composed config as `train.py`'s job sees it: without its `hydra` node, which is the
    job's HydraConfig meanwhile (paths interpolate `${hydra:...}`, the overrides tag reads it)."""
    instance = HydraConfig.instance()
    previous = instance.cfg
    instance.set_config(composed)
    job = copy.deepcopy(composed)
    with open_dict(job):
        del job["hydra"]
    try:
        yield job
    finally:
        instance.cfg = previous


def compose_train(conf: Path, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def override_key(text: str) -> str:
    return OverridesParser.create().parse_override(text).key_or_group


@dataclass
class Search:
    """One study's settings, composed from the command line (`overrides`, as given)."""

    conf: Path
    overrides: list[str]
    composed: DictConfig = field(repr=False)

    def __post_init__(self) -> None:
        choice = self.composed.hydra.runtime.choices.get("hparams_search")
        if choice is None:
            raise MuseError("name the search: python search.py hparams_search=<name> "
                            f"(one of {', '.join(available(self.conf))})")
        self.source = self.conf / "hparams_search" / f"{choice}.yaml"
        with as_hydra_job(self.composed) as job:
            if job.trainer.get("fast_dev_run"):
                raise MuseError("a search needs devel scores, which debug=fast does not record "
                                "(debug=short: two short epochs)")
            settings = OmegaConf.to_container(job.hparams_search, resolve=True)
            self.name = str(settings["study_name"])
            self.folder = Path(job.paths.log_dir) / "hparams_search" / self.name
            self.tracking_uri = str(job.logger.tracking_uri)
            self.experiment = str(job.task.experiment_name)
            self.direction = "maximize" if job.task.mode == "max" else "minimize"
            self.space = SearchSpace(settings["params"], job,
                                     set(self.composed.hydra.runtime.choices), self.source)
        self.n_trials, self.n_jobs = int(settings["n_trials"]), int(settings["n_jobs"])
        if self.n_trials < 1 or self.n_jobs < 1:
            raise MuseError(f"{self.source}: n_trials and n_jobs must be at least 1")
        self.storage_url = settings["storage"] or f"sqlite:///{self.folder / 'optuna.db'}"
        self.heartbeat_interval = int(settings["heartbeat_interval"])
        self.sampler_node = settings["sampler"]
        with self.trial_job([], None) as job:
            self.config_hash = tracking.config_hash(job)

    @classmethod
    def from_command_line(cls, conf: Path, overrides: list[str]) -> Search:
        return cls(conf, list(overrides), compose_train(conf, list(overrides)))

    @contextmanager
    def trial_job(self, values: list[str], number: int | None) -> Iterator[DictConfig]:
        """The training config of a trial with these values (None: the study's defaults),
        usable inside the block (its paths interpolate the job's HydraConfig)."""
        with as_hydra_job(compose_train(self.conf, [*self.overrides, *values])) as job:
            with open_dict(job):
                del job["hparams_search"]  # the study's settings: n_trials may grow, runs stay
                job.study = self.name      # tags the run and keeps its config hash to the study
                if number is not None:
                    job.paths.output_dir = str(self.folder / "trials" / f"trial-{number}")
            yield job

    def sampler(self, offset: int) -> optuna.samplers.BaseSampler:
        """The sampler, its seed moved by `offset` (trials so far, worker): a continued study
        or a second worker would otherwise draw the first values again."""
        node = dict(self.sampler_node)
        if node.get("seed") is not None:
            node["seed"] = int(node["seed"]) + offset
        return instantiate(node)

    def train_command(self, values: list[str]) -> str:
        """`python train.py ...` that trains these values outside the search."""
        given = {override_key(text) for text in self.overrides}
        choices = self.composed.hydra.runtime.choices
        chosen = [f"{group}={choices[group]}" for group in ("task", "model", "features")
                  if group not in given]
        kept = [text for text in self.overrides
                if override_key(text).partition(".")[0] != "hparams_search"]
        return " ".join(["python train.py", *chosen, *kept, *values])


def available(conf: Path) -> list[str]:
    return sorted(path.stem for path in (conf / "hparams_search").glob("[!_]*.yaml"))


class Objective:
    """One trial: its values, its training run, its value; interrupts are retried later."""

    def __init__(self, search: Search, study: optuna.Study) -> None:
        self.search, self.study = search, study

    def __call__(self, trial: optuna.Trial) -> float:
        values = self.search.space.suggest(trial)
        trial.set_user_attr(VALUES, values)
        log.info("trial %d of study %s: %s", trial.number, self.search.name, " ".join(values))
        with self.search.trial_job(values, trial.number) as cfg:
            try:
                result = train(cfg)
            except (KeyboardInterrupt, SystemExit):  # Lightning ends a Ctrl-C with SystemExit
                self._tag_unfinished_run(cfg, trial.number)
                self.study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
                raise KeyboardInterrupt from None  # Optuna marks the trial failed, then stops
            except Exception as error:
                self._tag_unfinished_run(cfg, trial.number)
                first_line = next(iter(str(error).splitlines()), "")
                trial.set_user_attr(ERROR, f"{type(error).__name__}: {first_line}")
                raise
        value = objective_value(cfg.task.name, result)
        client = MlflowClient(result.tracking_uri)
        # A resumed or reused run carries the trial that last ran it.
        client.set_tag(result.run_id, tracking.TRIAL_TAG, str(trial.number))
        client.log_metric(result.run_id, OBJECTIVE_METRIC, value)
        trial.set_user_attr(RUN_ID, result.run_id)
        return value

    @staticmethod
    def _tag_unfinished_run(cfg: DictConfig, number: int) -> None:
        run_id = tracking.unfinished_run(cfg.logger.tracking_uri, cfg.task.experiment_name,
                                         tracking.config_hash(cfg))
        if run_id is not None:
            MlflowClient(cfg.logger.tracking_uri).set_tag(run_id, tracking.TRIAL_TAG, str(number))


def _retry_stale(study: optuna.Study, trial: FrozenTrial) -> None:
    """Heartbeat callback: a trial whose process died runs again with the same values."""
    log.warning("trial %d stopped without a word (no heartbeat): retried with the same values",
                trial.number)
    study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})


def open_study(search: Search, worker: int = 0) -> optuna.Study:
    """The study in its storage, created on first use; refused if it started otherwise."""
    search.folder.mkdir(parents=True, exist_ok=True)
    sqlite = search.storage_url.startswith("sqlite:")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # the heartbeat is "experimental"
        storage = optuna.storages.RDBStorage(
            search.storage_url,
            # Workers and each one's heartbeat thread write to one SQLite file: wait for it.
            engine_kwargs={"connect_args": {"timeout": 60}} if sqlite else None,
            heartbeat_interval=search.heartbeat_interval,
            heartbeat_stale_trial_callback=_retry_stale)
    study = optuna.create_study(storage=storage, study_name=search.name,
                                direction=search.direction, load_if_exists=True)
    identity = {"config_hash": search.config_hash, "space": search.space.describe()}
    found = {key: study.user_attrs.get(key) for key in IDENTITY}
    if not any(found.values()):
        for key, value in identity.items():
            study.set_user_attr(key, value)
    elif found != identity:
        changed = " and ".join(k if k == "space" else "configuration"
                               for k in IDENTITY if found[k] != identity[k])
        raise MuseError(
            f"study {search.name} in {search.storage_url} started with another {changed}: "
            "continue it with the overrides and search file it started with, or start a new "
            "study with hparams_search.study_name=<name>")
    study.sampler = search.sampler(offset=len(study.trials) + worker)
    return study


def retried(trials: list[FrozenTrial]) -> set[int]:
    return {t.user_attrs[RETRY_OF] for t in trials if RETRY_OF in t.user_attrs}


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that count towards `n_trials`: finished, failed or running, not those
    waiting to run nor those an interrupted run left to a retry."""
    trials = study.get_trials(deepcopy=False)
    again = retried(trials)
    return [t for t in trials if t.state != TrialState.WAITING and t.number not in again]


def trials_left(study: optuna.Study, n_trials: int) -> int:
    return max(0, n_trials - len(counted_trials(study)))


def run_trials(search: Search, study: optuna.Study, count: int) -> None:
    # A failing trial is recorded (FAIL, its run FAILED with the traceback) and the study goes on.
    study.optimize(Objective(search, study), n_trials=count, catch=(Exception,))


def configure_logging() -> None:
    """What Hydra sets up for train.py: INFO records with their time and origin, Optuna's
    among them (and so in the study's search.log)."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def work(conf: str, overrides: list[str], worker: int, count: int) -> None:
    """A worker process of a parallel study: `count` trials against the shared storage."""
    configure_logging()
    search = Search.from_command_line(Path(conf), overrides)
    with logging_to(search.folder / "search.log"):
        # The workers share the machine's cores instead of each taking all of them.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // search.n_jobs))
        run_trials(search, open_study(search, worker), count)


def run_workers(search: Search, count: int) -> None:
    shares = [count // search.n_jobs + (i < count % search.n_jobs) for i in range(search.n_jobs)]
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
    workers = [context.Process(target=work, name=f"worker {i}",
                               args=(str(search.conf), search.overrides, i, share))
               for i, share in enumerate(shares) if share]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:  # Ctrl-C reached the workers too: each stops its trial
        for worker in workers:
            worker.join()
        raise
    for worker in workers:
        if worker.exitcode != 0:
            log.error("%s of study %s exited with status %s (see %s)", worker.name,
                      search.name, worker.exitcode, search.folder / "search.log")


@contextmanager
def logging_to(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


def run_search(conf: Path, overrides: list[str]) -> dict | None:
    """Run (or continue) the study; returns the best trial's record (None: none finished)."""
    search = Search.from_command_line(conf, overrides)
    search.folder.mkdir(parents=True, exist_ok=True)
    with logging_to(search.folder / "search.log"):
        # Opened once here, so that parallel workers find its tables made.
        tracking.open_store(search.tracking_uri)
        study = open_study(search)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        left = trials_left(study, search.n_trials)
        log.info("study %s (%s): %d of %d trials to run, %d at a time", search.name,
                 search.storage_url, left, search.n_trials, search.n_jobs)
        while left:
            if search.n_jobs == 1:
                run_trials(search, study, left)
            else:
                run_workers(search, left)
            now = trials_left(study, search.n_trials)
            if now >= left:  # a worker died without running its trials: the log says why
                break
            left = now  # trials found stale meanwhile were queued again
        record = record_best(search, study)
        print(outcome(search, study, record), flush=True)
    return record


def record_best(search: Search, study: optuna.Study) -> dict | None:
    """The best trial in `best.yaml` of the study folder (written whole or not at all)."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    values = list(best.user_attrs[VALUES])
    record = {"study": search.name, "storage": search.storage_url, "trial": best.number,
              "value": best.value, "run_id": best.user_attrs.get(RUN_ID),
              "experiment": search.experiment, "params": dict(best.params),
              "overrides": values, "command": search.train_command(values)}
    path = search.folder / BEST_FILE
    partial = path.with_suffix(".yaml.partial")
    partial.write_text(yaml.safe_dump(record, sort_keys=False, width=10_000))  # a line a value
    partial.replace(path)
    return record


def outcome(search: Search, study: optuna.Study, record: dict | None) -> str:
    """The lines a search ends with: counts, failures, the best trial and where to look."""
    trials = counted_trials(study)
    states = [t.state for t in trials]
    lines = ["", f"Study {search.name}: {len(trials)} of {search.n_trials} trials, "
             f"{states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.FAIL)} "
             f"failed, {states.count(TrialState.RUNNING)} running ({search.storage_url})"]
    lines += [f"  failed trial {t.number}: {t.user_attrs.get(ERROR, 'stopped')}"
              for t in trials if t.state == TrialState.FAIL]
    if record is None:
        lines.append("  no trial finished: nothing to report")
        return "\n".join(lines)
    lines += [f"  best: trial {record['trial']}, {OBJECTIVE_METRIC} {record['value']}, "
              f"MLflow run {record['run_id']}",
              f"  overrides: {' '.join(record['overrides'])}",
              f"  train it again: {record['command']}",
              f"  recorded in {search.folder / BEST_FILE}",
              f"  look at it: {tracking.ui_command(search.tracking_uri, search.experiment)}, "
              f"search tags.study = '{search.name}', sort by "
              f"{OBJECTIVE_METRIC}"]
    return "\n".join(lines)
