"""The run layer: what turns a composed config into a recorded run, and a run into its results.

Imports flow one way, from the entry points down:

* `train` (`train(cfg)`: dispatch on the model's kind) -> `lightning`, `sklearn` (the two kinds
  of run) -> `lifecycle` (the one way a run is opened, resumed and ended in MLflow),
  `builders` (datamodule, module, targets, folders from the config);
* `evaluate` (`evaluate(cfg)`: dispatch on the checkpoint's kind) -> `evaluation` (predict a
  partition, write it in the submission layout, score it officially);
* `artifacts` (with `plots`): what a finished run leaves in MLflow and prints;
* `tracking`: the MLflow store, run names, tags, config hashes; `result`: the typed result of a
  run; `multirun`: the Hydra callback that keeps a multirun going past failed jobs.
"""
