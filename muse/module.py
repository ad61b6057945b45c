"""`MuseModule`: the one LightningModule of every baseline = encoder + heads + losses + metrics.

The encoder comes from a Hydra node (`_target_`), so a baseline is one config plus one encoder
file. The constructor's arguments are saved as hyperparameters (not sent to the logger: the
training harness logs the whole config itself), so `MuseModule.load_from_checkpoint(path)`
rebuilds the model without any config tree.

Logged metric names
-------------------
* `train/loss`: the summed loss of all targets, averaged over the epoch.
* `<phase>/<target>/ccc` for continuous targets, `<phase>/<target>/{f1,uar,score}` (percent)
  for class targets, with `<phase>` = `devel` (validation) or `test`; every trained target is
  logged, scored or not.
* `<phase>/score`, the task score over the scored targets the model has:
  wild = mean of the arousal and valence CCC; trust = the trustworthiness CCC;
  topic = mean of the topic score and the emotion score (mean of the arousal and valence
  scores). The topic one is muse's single monitoring number; the official MuSe-Topic ranking
  compares systems by rank and has no per-system score. A model without some scored target
  (e.g. topic only) is scored on those it has.

Every value is exact over the whole partition (streaming metrics, synced across processes) and
unrounded. A target without any label in the partition (the masked test labels of the real
package) is not logged rather than logged as a misleading 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import hydra
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from muse.losses import ccc_loss
from muse.metrics import StreamingCCC, StreamingClassification
from muse.models.heads import Heads
from muse.tasks import TASKS

PHASES = ("devel", "test")  # validation is the challenge's devel partition


def _labelled(metric: StreamingCCC | StreamingClassification) -> bool:
    """Whether any process scored a labelled position since the last reset."""
    with metric.sync_context():
        count = metric.n if isinstance(metric, StreamingCCC) else metric.confusion.sum()
        return bool(count > 0)


class MuseModule(pl.LightningModule):
    """Encoder + one head per target, trained on the sum of the per-target losses.

    Args:
        encoder: Hydra node of the encoder (`_target_` and its arguments, not `input_dim`).
        input_dim: fused feature width, handed to the encoder.
        task: wild, topic or trust (decides how the task score combines the targets).
        targets: [{"name", "kind": "continuous" | "classes", "num_classes", "class_weights"}]
            in the order of the last dimension of the batch's `labels`.
        scored: the task's scored targets (those of the official score).
        optimizer: partial Hydra node of the optimizer (`_partial_: true`).
        scheduler: optional {"scheduler": partial node, "monitor": metric name, "mode":
            "min" | "max"}; `mode` is handed to the scheduler (ReduceLROnPlateau style),
            stepped once per epoch. With `"interval": "step"` it is stepped after every
            optimizer step instead and its partial also receives `total_steps`, the number of
            optimizer steps of the whole fit (see `muse.schedules`).
        output_activation: None or "tanh", squashing the continuous outputs (End2You).
    """

    def __init__(
        self,
        encoder: Mapping,
        input_dim: int,
        task: str,
        targets: Sequence[Mapping],
        scored: Sequence[str],
        optimizer: Mapping,
        scheduler: Mapping | None = None,
        output_activation: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(logger=False)
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        self.task = task
        self.encoder = hydra.utils.instantiate(encoder, input_dim=input_dim)
        self.heads = Heads(self.encoder.output_dim, targets, output_activation)
        self.targets = [str(t["name"]) for t in targets]
        self.kinds = self.heads.kinds
        self.scored = [str(name) for name in scored if name in self.kinds]
        if not self.scored:
            raise ValueError(f"none of the scored targets {list(scored)} is among {self.targets}")
        for target in targets:
            if target.get("class_weights") is not None:
                weights = torch.tensor(list(target["class_weights"]), dtype=torch.float32)
                self.register_buffer(f"class_weights_{target['name']}", weights, persistent=False)
        self.metrics = nn.ModuleDict({
            phase: nn.ModuleDict({
                name: StreamingCCC() if kind == "continuous"
                else StreamingClassification(self.heads.layers[name].out_features)
                for name, kind in self.kinds.items()
            })
            for phase in PHASES
        })

    def forward(self, batch: dict) -> dict[str, Tensor]:
        """{target: (B, T) values, (B,) pooled values or (B, C) logits}."""
        return self.heads(self.encoder(batch))

    # -- losses -------------------------------------------------------------------------------

    def _mask(self, batch: dict) -> Tensor | None:
        """The step mask where outputs are per step; pooled outputs have no steps to mask."""
        return batch["mask"] if self.encoder.per_step else None

    def loss(self, outputs: dict[str, Tensor], batch: dict) -> Tensor:
        """Sum over targets: CCC loss on labelled real steps, cross-entropy on known classes."""
        labels, mask = batch["labels"], self._mask(batch)
        total = 0.0
        for k, name in enumerate(self.targets):
            output, label = outputs[name], labels[..., k]
            if self.kinds[name] == "continuous":
                total = total + ccc_loss(output, label, mask)
            elif (label != -1).any():
                weight = getattr(self, f"class_weights_{name}", None)
                total = total + F.cross_entropy(output, label, weight=weight, ignore_index=-1)
            else:  # cross-entropy of nothing is 0/0; this batch teaches the head nothing
                total = total + output.sum() * 0.0
        return total

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self.loss(self(batch), batch)
        # sync_dist: under DDP the epoch's loss is the mean over every process's batches.
        self.log("train/loss", loss, on_step=False, on_epoch=True,
                 batch_size=len(batch["video_id"]), sync_dist=True)
        return loss

    # -- metrics ------------------------------------------------------------------------------

    def _update(self, phase: str, batch: dict) -> None:
        outputs, labels, mask = self(batch), batch["labels"], self._mask(batch)
        for k, name in enumerate(self.targets):
            label = labels[..., k]
            known = mask if self.kinds[name] == "continuous" else label != -1
            self.metrics[phase][name].update(outputs[name], label, known)

    def _log_phase(self, phase: str) -> None:
        """Log every target's metrics and the task score, then reset for the next epoch."""
        values, scores = {}, {}
        for name, metric in self.metrics[phase].items():
            if _labelled(metric):
                result = metric.compute()
                if isinstance(result, dict):
                    values |= {f"{phase}/{name}/{key}": v for key, v in result.items()}
                    scores[name] = result["score"]
                else:
                    values[f"{phase}/{name}/ccc"] = result
                    scores[name] = result
            # Fresh states made under Lightning's inference mode would be inference tensors,
            # which the in-place updates of a later no-grad run (gloo DDP) may not touch.
            with torch.inference_mode(False):
                metric.reset()
        score = self._task_score(scores)
        if score is not None:
            values[f"{phase}/score"] = score
        # The metric states are already synced across processes: the values agree everywhere.
        self.log_dict({k: float(v) for k, v in values.items()}, sync_dist=False)

    def _task_score(self, scores: dict[str, Tensor]) -> Tensor | None:
        """The task's score (`muse.tasks.Task.combine`) over the scored targets it has."""
        scored = {name: scores[name] for name in self.scored if name in scores}
        return TASKS[self.task].combine(scored, lambda values: torch.stack(values).mean())

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._update("devel", batch)

    def on_validation_epoch_end(self) -> None:
        self._log_phase("devel")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._update("test", batch)

    def on_test_epoch_end(self) -> None:
        self._log_phase("test")

    # -- predictions and optimisation ---------------------------------------------------------

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> dict:
        """The batch's row keys, labels and `predictions` {target: values or logits}, on the CPU.

        Fits `MuseDataModule.predictions_frame(outputs, [o["predictions"] for o in outputs])`;
        the labels let the caller build the gold frame without reading the partition again.
        """
        keys = ("video_id", "mask", "timestamp", "segment_id", "labels")
        out = {key: batch[key].cpu() for key in keys if key in batch}
        out["predictions"] = {name: value.cpu() for name, value in self(batch).items()}
        return out

    def configure_optimizers(self):
        optimizer = hydra.utils.instantiate(self.hparams.optimizer)(params=self.parameters())
        config = self.hparams.scheduler
        if config is None:
            return optimizer
        factory = hydra.utils.instantiate(config["scheduler"])
        if config.get("interval") == "step":
            # The run's length is known only now, once the trainer has the data and its limits.
            total = self.trainer.estimated_stepping_batches
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": factory(optimizer, total_steps=total),
                                 "interval": "step"},
            }
        extra = {"mode": config["mode"]} if config.get("mode") is not None else {}
        scheduler = factory(optimizer, **extra)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": config["monitor"]},
        }
