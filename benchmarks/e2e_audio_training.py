"""End2You training speed with raw audio read from the HDF5 store, and a run's peak memory.

The End2You `MuseModule` (MuSe-Wild, raw audio + VGGface + fastText, batch 10, windows of 50
steps) trains the same number of steps three ways, each in a fresh process so that its peak
resident memory is its own:

* `memory`: the batches collected beforehand and handed out by a plain list (the reference:
  no data work at all during training);
* `store`: `MuseDataModule.train_dataloader()` as `train.py` uses it, audio held in memory
  when it fits the budget (the default);
* `streamed`: the same with a memory budget of 0, every window's audio and features read from
  the file while training.

Prints steps per second, the ratios against the reference (goal: at least 0.8) and the peak
RSS of each process.

    python benchmarks/e2e_audio_training.py --videos 12 --minutes 3 --steps 30
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from ready_batches import Batches  # benchmarks/, the script's own folder

from muse.data.datamodule import MuseDataModule
from muse.module import MuseModule
from muse.package.synthetic import synthesize
from muse.store.prepare import prepare

FEATURES = ["vggface", "fasttext"]
MODES = ("memory", "store", "streamed")


def build_module(datamodule: MuseDataModule) -> MuseModule:
    return MuseModule(
        encoder={"_target_": "muse.models.end2you.End2You",
                 "audio_samples": datamodule.audio_samples_per_step},
        input_dim=datamodule.feature_dim, task="wild",
        targets=[{"name": "arousal", "kind": "continuous"},
                 {"name": "valence", "kind": "continuous"}],
        scored=["arousal", "valence"],
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 8e-5},
        output_activation="tanh",
    )


def train_steps(store: Path, mode: str, steps: int) -> dict:
    """Steps per second of `steps` training steps after 2 warm-up steps, in this process."""
    budget = 0 if mode == "streamed" else 2048
    datamodule = MuseDataModule(store, "wild", FEATURES, batch_size=10, audio=True,
                                memory_budget_mb=budget)
    loader = datamodule.train_dataloader()
    if mode == "memory":
        batches = [batch for batch, _ in zip(loader, range(steps + 2), strict=False)]
        loader = torch.utils.data.DataLoader(Batches(batches), batch_size=None)
    pl.seed_everything(0)
    module = build_module(datamodule)
    clock: dict[str, float] = {}

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if trainer.global_step == 2:
                clock["start"] = time.perf_counter()

    trainer = pl.Trainer(max_steps=steps + 2, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         accelerator="cpu", devices=1, limit_val_batches=0,
                         callbacks=[Clock()])
    trainer.fit(module, train_dataloaders=loader)
    elapsed = time.perf_counter() - clock["start"]
    return {"steps_per_s": steps / elapsed,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--store", type=Path, default=None, help="an existing wild store")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(train_steps(args.store, args.child, args.steps)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            package = synthesize(Path(tmp) / "package", videos=args.videos,
                                 minutes=args.minutes, seed=0, features=FEATURES)
            store = prepare(package, Path(tmp) / "data", tasks=["wild"])["wild"]
        results = {}
        for mode in MODES:
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, "--store", str(store),
                 "--steps", str(args.steps)],
                capture_output=True, text=True, check=True)
            results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        store_mb = store.stat().st_size / 2**20
    reference = results["memory"]["steps_per_s"]
    print(json.dumps({
        "store_mb": round(store_mb, 1), "steps": args.steps,
        "torch_threads": torch.get_num_threads(),
        **{f"{mode}_steps_per_s": round(r["steps_per_s"], 3) for mode, r in results.items()},
        **{f"{mode}_ratio": round(results[mode]["steps_per_s"] / reference, 3)
           for mode in ("store", "streamed")},
        **{f"{mode}_peak_rss_mb": round(r["peak_rss_mb"], 1) for mode, r in results.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
