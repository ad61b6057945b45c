"""`muse predict`: a finished run applied to new media (or to a package), per-video outputs.

One file per job: run (the MLflow run: its config and best checkpoints), inputs (what the run
reads and whether this machine can extract it), models (the checkpoints loaded and applied to a
store, with their normalisation statistics), figures (the predicted curves), outputs (the
per-video CSV and PNG files) and pipeline (`predict_run`: extract, prepare, predict, write,
and with `log` record them under the run).
"""

from muse.predict.errors import PredictError
from muse.predict.pipeline import predict_run

__all__ = ["PredictError", "predict_run"]
