"""`evaluate(cfg)` (evaluate.py): a finished run's checkpoints predicted, scored and submitted.

The checkpoint's kind decides how it is rebuilt: a Lightning checkpoint gives the module and
the datamodule back (`load_from_checkpoint`), a saved scikit-learn model (`.skops`) its own
store and segment means (`muse.runs.sklearn.evaluate_saved`).
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from mlflow.exceptions import MlflowException
from omegaconf import DictConfig

from muse.data.datamodule import MuseDataModule
from muse.errors import CheckpointError, MuseError
from muse.module import MuseModule
from muse.runs import tracking
from muse.runs.evaluation import Evaluation, combine, evaluate_module
from muse.runs.sklearn import evaluate_saved
from muse.store.prepare import store_path

# What loading a truncated, corrupt or foreign file as a Lightning checkpoint raises (torch's
# zip reader, its weights-only unpickler, a missing key or constructor argument).
UNREADABLE = (RuntimeError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError,
              OSError, AttributeError)


def locate_checkpoints(cfg: DictConfig) -> tuple[list[Path], str | None]:
    """The checkpoints to evaluate (one per model of the run) and the MLflow run they belong
    to (None if unknown). `ckpt` may list several files, comma-separated."""
    if cfg.get("ckpt"):
        paths = [Path(part.strip()) for part in str(cfg.ckpt).split(",") if part.strip()]
        for path in paths:
            if not path.is_file():
                raise MuseError(f"ckpt={path}: no such checkpoint file")
        return paths, tracking.checkpoint_run_id(paths[0])
    if not cfg.get("run_id"):
        raise MuseError("give run_id=<mlflow run id> or ckpt=<checkpoint file>")
    client = tracking.open_store(cfg.logger.tracking_uri)
    try:
        tags = client.get_run(cfg.run_id).data.tags
    except MlflowException:
        raise MuseError(f"run_id={cfg.run_id}: no such run in {cfg.logger.tracking_uri}") from None
    download_dir = tracking.downloaded_checkpoints_dir(Path(cfg.paths.log_dir), cfg.run_id)
    try:
        return tracking.best_checkpoints_here(client, cfg.run_id, tags, download_dir), cfg.run_id
    except CheckpointError as error:
        raise CheckpointError(f"{error}; pass ckpt=<file> instead") from None


def evaluate_checkpoint(checkpoint: Path, data_dir: str | None) -> tuple[Evaluation, list[str]]:
    """Model and data rebuilt from one checkpoint (the store from `data_dir` if given): its
    evaluation and the task's scored targets."""
    # A classical baseline's saved model, not Lightning's (.joblib: an old pickle, refused).
    if checkpoint.suffix in (".skops", ".joblib"):
        return evaluate_saved(checkpoint, data_dir)
    try:
        module = MuseModule.load_from_checkpoint(checkpoint, map_location="cpu")
        task, scored = module.hparams.task, list(module.hparams.scored)
        overrides = {}
        if data_dir:
            overrides["store_path"] = store_path(Path(data_dir), task)
        datamodule = MuseDataModule.load_from_checkpoint(checkpoint, **overrides)
    except UNREADABLE as error:
        raise MuseError(f"{checkpoint}: not a readable muse checkpoint, corrupt or of another "
                        f"program ({type(error).__name__}: {_first_line(error)})") from error
    return evaluate_module(module, datamodule, task, scored), scored


def _first_line(error: BaseException) -> str:
    return next(iter(str(error).splitlines()), "")


def evaluate(cfg: DictConfig) -> dict:
    """evaluate.py: rebuild model and data from a checkpoint, predict, score, write test.csv."""
    checkpoints, run_id = locate_checkpoints(cfg)
    evaluated = [evaluate_checkpoint(path, cfg.get("data_dir")) for path in checkpoints]
    evaluations, scored = [e for e, _ in evaluated], evaluated[0][1]
    result = evaluations[0]
    if len(evaluations) > 1:
        result = combine(evaluations, result.task, scored)
    out = Path(cfg.paths.output_dir)
    paths = result.write(out)
    if run_id is not None:
        client = tracking.open_store(cfg.logger.tracking_uri)
        for key, value in result.flat_scores("evaluate").items():
            client.log_metric(run_id, key, float(value))
        client.log_artifact(run_id, str(paths["test"]), "submission")
    print(f"evaluated {', '.join(map(str, checkpoints))}")
    for partition, scores in result.scores.items():
        print(f"  {partition}: {json.dumps(scores) if scores else 'not scored (see above)'}")
    print(f"  submission file: {paths['test']}")
    return {"checkpoint": ",".join(map(str, checkpoints)), "run_id": run_id,
            "scores": result.scores, "submission": str(paths["test"])}
