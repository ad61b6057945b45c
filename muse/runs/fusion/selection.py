"""Which runs `muse fuse` fuses: the run ids given, the runs an MLflow filter selects, or with
`--seeds` those runs grouped by configuration minus the seed, one seed ensemble per group.

Two runs belong to one seed ensemble when their resolved configurations (`config.yaml`, which
every run logs) are the same once the seed is left out, by the hash muse already uses to find
a run of the same configuration again (`muse.runs.tracking.config_hash`: paths, logging and
resuming do not count), and they are in the same experiment.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow.artifacts
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from muse.errors import FusionError
from muse.runs import tracking
from muse.runs.fusion.tags import FUSION_MODEL

REPORT_EXPERIMENT = "muse-report"  # `muse report`'s own runs, never members


def filtered_runs(client: MlflowClient, filter_string: str, fused: bool = True) -> list[Run]:
    """The FINISHED top-level runs the filter selects in every experiment, oldest first;
    `fused=False` leaves fused runs out."""
    experiments = [e.experiment_id for e in client.search_experiments()
                   if e.name != REPORT_EXPERIMENT]
    query = " and ".join(part for part in (filter_string.strip(),
                                           "attributes.status = 'FINISHED'") if part)
    try:
        runs = client.search_runs(experiments, query, max_results=50_000,
                                  order_by=["attributes.start_time ASC"])
    except MlflowException as error:
        raise FusionError(f"--filter {filter_string!r}: {error.message}") from None
    return [run for run in runs if tracking.PARENT_TAG not in run.data.tags
            and (fused or run.data.tags.get("model") != FUSION_MODEL)]


def _hash_without_seed(run: Run, tracking_uri: str) -> str:
    with tempfile.TemporaryDirectory(prefix="muse-seeds-") as folder, tracking.quiet_downloads():
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path="config.yaml", dst_path=folder,
                tracking_uri=tracking_uri)
        except (MlflowException, OSError):
            raise FusionError(f"run {run.info.run_id} ({run.info.run_name}) has no "
                              "config.yaml to compare its configuration by") from None
        cfg = OmegaConf.load(Path(path))
    cfg.pop("seed", None)
    return tracking.config_hash(cfg)


def seed_groups(runs: list[Run], tracking_uri: str) -> list[list[Run]]:
    """The runs (oldest first) grouped by experiment and configuration minus the seed, in
    first-seen order; of reruns with the same seed the newest counts."""
    groups: dict[tuple[str, str], dict[str, Run]] = {}
    for run in runs:
        key = (run.info.experiment_id, _hash_without_seed(run, tracking_uri))
        groups.setdefault(key, {})[run.data.tags.get("seed", "")] = run
    return [list(by_seed.values()) for by_seed in groups.values()]


def member_groups(client: MlflowClient, tracking_uri: str, run_ids: list[str],
                  filter_string: str | None, seeds: bool) -> list[list[str]]:
    """The run ids of each fusion to make: one fusion of the given or filtered runs, or with
    `seeds` one per group of two runs or more (FusionError when nothing is left to fuse)."""
    if run_ids and filter_string:
        raise FusionError("give run ids or --filter, not both")
    if seeds and not filter_string:
        raise FusionError("--seeds groups the runs of a --filter: give one")
    if not filter_string:
        return [list(run_ids)]
    runs = filtered_runs(client, filter_string, fused=not seeds)
    if not seeds:
        return [[run.info.run_id for run in runs]]
    groups = [group for group in seed_groups(runs, tracking_uri) if len(group) > 1]
    if not groups:
        raise FusionError(f"--filter {filter_string!r} --seeds: no configuration has two "
                          f"finished seeds or more among the {len(runs)} run(s) it selects")
    return [[run.info.run_id for run in group] for group in groups]
