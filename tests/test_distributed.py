"""Training on several processes (DDP, gloo on the CPU): each process's unpadded share of the
devel/test items, devel metrics equal to a single process's, MLflow written by rank 0 alone.

The end-to-end check runs `python train.py` twice on the demo store, once as one process and
once with `trainer=ddp_cpu` (Lightning re-runs the script for rank 1), with the learning rate
at 0: both runs then train through their whole machinery (gradient all-reduce, samplers,
checkpoints) and still validate the very same weights, so any difference in the devel metrics
comes from how the partition is split and how the metrics are reduced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient
from torch.utils.data import DistributedSampler

from muse.data.datamodule import MuseDataModule
from muse.data.sharding import evaluation_sampler
from muse.distributed import RANK_VARIABLES, is_global_zero
from muse.errors import MuseError
from muse.runs.multirun import RESULT_FILE

REPO = Path(__file__).parents[1]
EVAL_WINDOW = 40  # 17 devel chunks on the demo store: an odd count, which padding would show
# One devel chunk per batch: an item's float32 outputs then do not depend on which other
# items share its batch (they do, by ~1e-7, through the matrix kernels' blocking), so both
# runs compute bit-identical predictions and the metrics must agree exactly.
RUN = ["debug=short", "trainer.limit_train_batches=2", "data.batch_size=8",
       f"data.eval_window={EVAL_WINDOW}", "data.eval_batch_size=1", "model.optimizer.lr=0"]
# What a launcher or the developer's shell may have set; each run starts from none of them.
LAUNCH_VARIABLES = (*RANK_VARIABLES, "MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE",
                    "MLFLOW_TRACKING_URI")


# -- the unpadded evaluation shares ------------------------------------------------------------


@pytest.mark.parametrize("length", [5, 7, 10, 13])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_evaluation_shares_hold_every_item_exactly_once(length: int, world: int) -> None:
    samplers = [evaluation_sampler(range(length), world, rank, "devel") for rank in range(world)]
    shares = [list(sampler) for sampler in samplers]
    assert sorted(index for share in shares for index in share) == list(range(length))
    assert shares[0] == list(range(0, length, world))
    sizes = [len(share) for share in shares]
    assert max(sizes) - min(sizes) <= 1
    assert [len(sampler) for sampler in samplers] == sizes


def test_one_process_reads_the_whole_partition() -> None:
    assert evaluation_sampler(range(3), 1, 0, "devel") is None


def test_fewer_items_than_processes_is_refused() -> None:
    with pytest.raises(MuseError, match=r"test partition has 2 evaluation items.* 4 processes"):
        evaluation_sampler(range(2), 4, 3, "test")


def _keys(loader) -> list[tuple[int, int]]:
    return [(int(batch["video_id"][i]), int(t)) for batch in loader
            for i in range(len(batch["video_id"]))
            for t in batch["timestamp"][i][batch["mask"][i]]]


def test_datamodule_splits_devel_and_test_across_ranks(demo_stores: dict[str, Path]) -> None:
    dm = MuseDataModule(demo_stores["wild"], "wild", ["egemaps"], eval_window=EVAL_WINDOW,
                        eval_batch_size=3)
    whole = {"devel": _keys(dm.val_dataloader()), "test": _keys(dm.test_dataloader())}
    shares = {"devel": [], "test": []}
    for rank in range(2):
        dm.trainer = SimpleNamespace(world_size=2, global_rank=rank)
        for partition, loader in (("devel", dm.val_dataloader()), ("test", dm.test_dataloader())):
            # Lightning replaces any sampler but a DistributedSampler with its padded one.
            assert isinstance(loader.sampler, DistributedSampler)
            shares[partition].append(_keys(loader))
    for partition, (first, second) in shares.items():
        assert first and second and not set(first) & set(second)
        assert sorted(first + second) == sorted(whole[partition])
    # predict (the harness's evaluation) always reads the whole partition.
    assert _keys(dm.predict_dataloader("devel")) == whole["devel"]


# -- which process is rank 0 before the Trainer exists -----------------------------------------


@pytest.mark.parametrize(("variables", "zero"), [
    ({}, True),
    ({"LOCAL_RANK": "0", "NODE_RANK": "0", "WORLD_SIZE": "4"}, True),
    ({"LOCAL_RANK": "1"}, False),  # Lightning's re-run of the script for a second device
    ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),  # first device of the second machine
    ({"SLURM_PROCID": "2"}, False),
    ({"RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"}, True),  # torchrun's rank 0
])
def test_rank_zero_is_read_from_the_launchers_variables(monkeypatch, variables, zero) -> None:
    for name in RANK_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert is_global_zero() is zero


# -- one process against two, end to end -------------------------------------------------------


def _start(root: Path, data_dir: Path, *overrides: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARIABLES}
    # One thread per process in both runs: the same kernels whatever the core count (Lightning
    # would give each DDP process cores / processes threads, the single run all of them).
    env.update(HYDRA_FULL_ERROR="1", OMP_NUM_THREADS="1")
    command = [sys.executable, str(REPO / "train.py"), f"paths.root_dir={root}",
               f"data.dir={data_dir}", *RUN, *overrides]
    return subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-5000:]
    return output


@pytest.fixture(scope="module")
def runs(demo_stores: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    store = demo_stores["wild"]
    devel = MuseDataModule(store, "wild", ["egemaps"], eval_window=EVAL_WINDOW).dataset("devel")
    assert len(devel) % 2 == 1  # else a padded split would go unnoticed
    roots = {name: tmp_path_factory.mktemp(name) for name in ("one", "two")}
    # Both at once: most of each run is starting Python and importing the libraries.
    processes = {"one": _start(roots["one"], store.parent),
                 "two": _start(roots["two"], store.parent, "trainer=ddp_cpu")}
    outputs = {name: _finish(process) for name, process in processes.items()}
    assert "Starting with 2 processes" in outputs["two"]
    return {name: SimpleNamespace(root=root,
                                  client=MlflowClient(f"sqlite:///{root}/logs/mlflow.db"))
            for name, root in roots.items()}


def _only_run(client: MlflowClient):
    experiments = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(experiments)
    return run


def _histories(client: MlflowClient, run, prefix: str) -> dict[str, list[float]]:
    return {key: [m.value for m in sorted(client.get_metric_history(run.info.run_id, key),
                                          key=lambda m: m.step)]
            for key in run.data.metrics if key.startswith(prefix)}


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[str]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(client, run_id, item.path) if item.is_dir else [item.path]
    return sorted(found)


def _without_system(lengths: dict[str, int]) -> dict[str, int]:
    return {key: value for key, value in lengths.items() if not key.startswith("system/")}


def test_two_processes_give_exactly_the_devel_metrics_of_one(runs) -> None:
    one, two = (_histories(r.client, _only_run(r.client), "devel/") for r in runs.values())
    assert set(one) == {"devel/arousal/ccc", "devel/valence/ccc", "devel/score"}
    assert all(len(values) == 2 for values in one.values())  # both epochs
    assert two == one
    # The best checkpoint is evaluated by rank 0 alone, on the same weights.
    best = [_histories(r.client, _only_run(r.client), "best/") for r in runs.values()]
    assert best[0] and best[1] == best[0]


def test_only_rank_zero_writes_to_mlflow(runs) -> None:
    one, two = runs["one"], runs["two"]
    run = _only_run(two.client)  # rank 1 opened no run of its own
    assert run.info.status == "FINISHED"
    reference = _only_run(one.client)
    # Nothing logged twice: every metric has as many points, every artifact is there once.
    # System metrics are sampled by the clock, so their number of points differs between runs:
    # the same ones must be there (rank 0's sampler, the only one).
    lengths = {key: len(values) for key, values in _histories(two.client, run, "").items()}
    expected = {key: len(values)
                for key, values in _histories(one.client, reference, "").items()}
    assert _without_system(lengths) == _without_system(expected)
    assert lengths.keys() == expected.keys()
    assert _artifacts(two.client, run.info.run_id) == _artifacts(one.client,
                                                                  reference.info.run_id)
    assert [p.name for p in (two.root / "logs" / "checkpoints").iterdir()] == [run.info.run_id]
    (folder,) = (two.root / "logs" / "runs").iterdir()  # rank 1 shares rank 0's run folder
    assert json.loads((folder / RESULT_FILE).read_text())["run_id"] == run.info.run_id
