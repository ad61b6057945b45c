"""One training epoch of the LSTM + self-attention baseline on a (full-size) MuSe-Wild store:
epoch time and memory, with the features held in memory or streamed under a memory budget.

The run is composed from `conf/` exactly as `python train.py task=wild model=lstm_att
features=F data.memory_budget_mb=B` composes it, and built by `muse.runs.builders`'
`build_datamodule` and `build_module`; only the trainer is reduced to one training epoch
without validation, checkpoints or MLflow. Each measurement runs in a fresh process:

* `epoch`: the whole epoch;
* `tenth`: the first tenth of the same epoch's batches (`limit_train_batches=0.1`), the
  reference for how memory and time grow with the work done.

Memory is sampled from /proc/self/status every 50 ms. `anon` (RssAnon) is what the process
owns: model, batches, arrays held in memory. `rss` adds the pages of the store that the
streamed reads have mapped (RssFile): page cache, shared with the kernel and given back under
memory pressure, so it tells how much of the file was read, not what the run needs. The goal:
peak anon at most the memory budget plus a fixed overhead, the same for a tenth and a whole
epoch, and epoch time about ten times the tenth's.

    python benchmarks/full_scale_epoch.py --store DIR/wild.h5 --features egemaps
    python benchmarks/full_scale_epoch.py --store DIR/wild.h5 --features deepspectrum \
        --budget-mb 512
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir

from muse.runs.builders import build_datamodule, build_module

CONF = Path(__file__).resolve().parents[1] / "conf"
FIELDS = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file"}
PARTS = {"epoch": 1.0, "tenth": 0.1}


class MemorySampler(threading.Thread):
    """Peak of each /proc/self/status field in FIELDS, in MiB, sampled until `stop()`."""

    def __init__(self, interval_s: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak = dict.fromkeys(FIELDS.values(), 0.0)
        self._done = threading.Event()

    def sample(self) -> dict[str, float]:
        now: dict[str, float] = {}
        with open("/proc/self/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in FIELDS:
                    now[FIELDS[key]] = int(value.split()[0]) / 1024
        for key, value in now.items():
            self.peak[key] = max(self.peak[key], value)
        return now

    def run(self) -> None:
        while not self._done.wait(self.interval_s):
            self.sample()

    def stop(self) -> dict[str, float]:
        self._done.set()
        self.join()
        self.sample()
        return self.peak


def measure(store: Path, features: str, budget_mb: float, fraction: float) -> dict:
    """One (partial) training epoch in this process: time, batches and memory."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[
            "task=wild", "model=lstm_att", f"features={features}",
            f"data.memory_budget_mb={budget_mb}", f"paths.root_dir={store.parent}",
            f"paths.output_dir={store.parent}/benchmark-out", f"data.dir={store.parent}"])
    sampler = MemorySampler()
    sampler.start()
    setup_start = time.perf_counter()
    datamodule = build_datamodule(cfg, store)
    datamodule.setup("fit")
    pl.seed_everything(cfg.seed)
    module = build_module(cfg, datamodule)
    clock: dict[str, float] = {}

    class Clock(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            clock["setup_s"] = time.perf_counter() - setup_start
            clock["anon_at_start"] = sampler.sample()["anon"]
            clock["start"] = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            clock["epoch_s"] = time.perf_counter() - clock["start"]
            clock["batches"] = trainer.num_training_batches

    trainer = pl.Trainer(max_epochs=1, limit_train_batches=fraction, limit_val_batches=0,
                         gradient_clip_val=cfg.trainer.gradient_clip_val, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1,
                         num_sanity_val_steps=0, callbacks=[Clock()])
    trainer.fit(module, train_dataloaders=datamodule.train_dataloader())
    peak = sampler.stop()
    return {"in_memory": datamodule.train_dataset.rows.in_memory,
            "setup_s": clock["setup_s"], "epoch_s": clock["epoch_s"],
            "batches": clock["batches"], "anon_at_start_mb": clock["anon_at_start"],
            **{f"peak_{key}_mb": value for key, value in peak.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a prepared wild.h5")
    parser.add_argument("--features", default="egemaps", help="a conf/features config name")
    parser.add_argument("--budget-mb", type=float, default=2048,
                        help="data.memory_budget_mb (default: the config's 2048)")
    parser.add_argument("--parts", default="tenth,epoch", help="from: tenth,epoch")
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.store, args.features, args.budget_mb, PARTS[args.child])))
        return
    results = {}
    for part in args.parts.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", part, "--store", str(args.store),
             "--features", args.features, "--budget-mb", str(args.budget_mb)],
            capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"{part} failed:\n{out.stderr[-4000:]}")
        results[part] = json.loads(out.stdout.strip().splitlines()[-1])
    summary = {"store": str(args.store), "store_gb": round(args.store.stat().st_size / 1e9, 2),
               "features": args.features, "budget_mb": args.budget_mb,
               "torch_threads": torch.get_num_threads(), **results}
    if {"tenth", "epoch"} <= results.keys():
        summary["epoch_over_tenth_time"] = round(
            results["epoch"]["epoch_s"] / results["tenth"]["epoch_s"], 2)
        summary["epoch_over_tenth_peak_anon"] = round(
            results["epoch"]["peak_anon_mb"] / results["tenth"]["peak_anon_mb"], 3)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
