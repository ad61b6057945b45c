"""Lightning's cost: a training epoch through `pl.Trainer` against a bare PyTorch loop.

Both train the same `MuseModule` (the LSTM + self-attention baseline, MuSe-Wild, eGeMAPS +
fastText) on the same batches, held in memory so that only the training machinery differs:
forward, the module's loss, backward, gradient clipping at 1.0, an Adam step. Prints the
best-of-N epoch times and their ratio (goal: Lightning costs at most 1.25x the bare loop).

    python benchmarks/lightning_overhead.py --videos 12 --minutes 2
"""

from __future__ import annotations

import argparse
import json
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

FEATURES = ["egemaps", "fasttext"]


def build_module(input_dim: int) -> MuseModule:
    return MuseModule(
        encoder={"_target_": "muse.models.lstm_attention.LSTMSelfAttention",
                 "hidden_size": 40, "input_noise": 0.1, "pooling": None},
        input_dim=input_dim, task="wild",
        targets=[{"name": "arousal", "kind": "continuous"},
                 {"name": "valence", "kind": "continuous"}],
        scored=["arousal", "valence"],
        optimizer={"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-4},
    )


def lightning_epoch_s(batches: list[dict], input_dim: int, epochs: int) -> float:
    """Per-epoch time of `epochs` Lightning epochs (the first one excluded as warm-up)."""
    pl.seed_everything(0)
    module = build_module(input_dim)
    loader = torch.utils.data.DataLoader(Batches(batches), batch_size=None, shuffle=False)
    times: list[float] = []

    class Clock(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            times.append(time.perf_counter() - self.start)

    trainer = pl.Trainer(max_epochs=epochs + 1, gradient_clip_val=1.0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", devices=1,
                         limit_val_batches=0, callbacks=[Clock()])
    trainer.fit(module, train_dataloaders=loader)
    return min(times[1:])


def bare_epoch_s(batches: list[dict], input_dim: int, epochs: int) -> float:
    torch.manual_seed(0)
    module = build_module(input_dim)
    module.train()
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-4)
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for batch in batches:
            optimizer.zero_grad(set_to_none=True)
            loss = module.loss(module(batch), batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=12)
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hop", type=int, default=10, help="window hop: more batches per epoch")
    parser.add_argument("--store", type=Path, default=None, help="an existing wild store")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if store is None:
            package = synthesize(Path(tmp) / "package", videos=args.videos,
                                 minutes=args.minutes, seed=0, features=FEATURES)
            store = prepare(package, Path(tmp) / "data", tasks=["wild"], audio_rate=0)["wild"]
        datamodule = MuseDataModule(store, "wild", FEATURES, batch_size=50, hop=args.hop)
        datamodule.setup()
        batches = list(datamodule.train_dataloader())
        bare = bare_epoch_s(batches, datamodule.feature_dim, args.epochs)
        lightning = lightning_epoch_s(batches, datamodule.feature_dim, args.epochs)
    print(json.dumps({
        "batches_per_epoch": len(batches), "torch_threads": torch.get_num_threads(),
        "bare_epoch_s": round(bare, 4), "lightning_epoch_s": round(lightning, 4),
        "ratio_lightning_over_bare": round(lightning / bare, 3),
    }, indent=2))


if __name__ == "__main__":
    main()
