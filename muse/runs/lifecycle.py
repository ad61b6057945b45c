"""The one lifecycle of a recorded run, whatever trains in it (Lightning, scikit-learn).

`recorded_run` opens the MLflow run, or attaches to the one being resumed, under the run's lock
(`muse.locks`: resuming never attaches a second process to a run that is still training);
records what every run records first (the resolved config once, the data tags, the store as
its train/devel/test datasets, where its checkpoints go); samples MLflow's system metrics
(`system/...`: CPU, memory, disk, network, NVIDIA GPUs) while it runs, unless
`logger.system_metrics=false`; and ends it: FINISHED when the block completes; KILLED on
Ctrl-C, printing the command that resumes it when the fit was interrupted and left a
checkpoint; FAILED with the traceback (`traceback.txt`) on any other error. The child runs
under way (one target of a per-target run) end with the run.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig
from pytorch_lightning.loggers import MLFlowLogger

from muse import locks
from muse.runs import tracking
from muse.runs.builders import checkpoint_dir, output_dir, run_lock
from muse.store.demo import is_demo_store

log = logging.getLogger(__name__)


@dataclass
class OpenRun:
    """A run being recorded: its logger, folders, and what its ending must know.

    `children` gives the child runs under way; `interrupted` says whether the fit stopped for
    a Ctrl-C (Lightning ends one with SystemExit) and can resume from its last checkpoint.
    """

    logger: MLFlowLogger
    out: Path
    checkpoints: Path
    synthetic_demo: bool
    children: Callable[[], set[str]] = field(default=set)
    interrupted: Callable[[], bool] = field(default=lambda: False)

    @property
    def run_id(self) -> str:
        return self.logger.run_id

    @property
    def client(self) -> MlflowClient:
        return self.logger.experiment

    def stopped(self) -> set[str]:
        return {self.run_id, *self.children()}


@contextmanager
def recorded_run(cfg: DictConfig, store: Path, resume_id: str | None = None,
                 checkpoint: Path | None = None) -> Iterator[OpenRun]:
    """The run of `cfg` (new, or `resume_id` resumed from `checkpoint`), ended by its outcome."""
    with ExitStack() as held:
        if resume_id is not None:  # before attaching to it: is it still training?
            held.enter_context(locks.training(run_lock(cfg, resume_id), resume_id))
        logger = tracking.make_logger(cfg, resume_id)
        if resume_id is None:
            held.enter_context(locks.training(run_lock(cfg, logger.run_id), logger.run_id))
        run = OpenRun(logger, output_dir(cfg), checkpoint_dir(cfg, logger.run_id),
                      is_demo_store(store))
        if resume_id is None:
            tracking.log_config(logger, cfg, run.out)
            tracking.log_datasets(run.client, run.run_id, store)
        else:
            log.info("resuming MLflow run %s from %s", run.run_id, checkpoint)
        run.client.set_tag(run.run_id, tracking.CHECKPOINT_DIR_TAG,
                           str(run.checkpoints.resolve()))
        tracking.tag_data(run.client, run.run_id, store, run.synthetic_demo)
        with ended(run), system_metrics(cfg, run.run_id, resumed=resume_id is not None):
            yield run


@contextmanager
def system_metrics(cfg: DictConfig, run_id: str, resumed: bool) -> Iterator[None]:
    """MLflow's system metrics of the run, sampled while the block runs (`logger.system_metrics`,
    every `logger.system_metrics_interval_s` seconds); a resumed run continues their steps."""
    if not cfg.logger.get("system_metrics", False):
        yield
        return
    monitor = SystemMetricsMonitor(
        run_id, sampling_interval=float(cfg.logger.get("system_metrics_interval_s", 10)),
        resume_logging=resumed, tracking_uri=cfg.logger.tracking_uri)
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()  # before the run is marked: its last samples land in a running run
        # MLflow drops the samples of an interval cut short by the end: one last sample, so that
        # a run shorter than the interval has its system metrics too.
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()


@contextmanager
def ended(run: OpenRun) -> Iterator[None]:
    """Marks `run` (and its children under way) by how the block ends (module doc)."""
    try:
        yield
    except SystemExit:
        if not run.interrupted():
            _mark(run, "FAILED", traceback.format_exc())
            raise
        _mark(run, "KILLED")
        print(f"\nInterrupted. Resume with: python train.py <same overrides> "
              f"ckpt_path={run.run_id}")
        raise
    except KeyboardInterrupt:
        _mark(run, "KILLED")
        raise
    except BaseException:
        _mark(run, "FAILED", traceback.format_exc())
        raise
    tracking.mark(run.client, run.run_id, "FINISHED")


def _mark(run: OpenRun, status: str, trace: str | None = None) -> None:
    for run_id in run.stopped():
        tracking.mark(run.client, run_id, status, trace)
