"""`predict_run`: a finished run applied to new media or a package, per-video files in `out`.

run (config, best checkpoints) -> the inputs it reads, refused when new media cannot give them
-> `muse extract` of the media into a temporary package (or the given package) -> `muse
prepare` of the run's task with exactly those feature sets (and the raw audio at the model's
rate for End2You) into a temporary store -> the checkpoints with their normalisation
statistics -> per-video CSV and PNG. `out` is written as a staging folder renamed into place:
an error leaves nothing there. With `log`, the files become artifacts of the run under
`predictions/<out folder name>/`; its metrics, params and status stay as they are.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mlflow.exceptions import MlflowException

from muse.package.extract import extract_package
from muse.package.staging import staged_folder
from muse.predict.errors import PredictError
from muse.predict.inputs import check_extractable, run_inputs
from muse.predict.models import load_model, predict_store
from muse.predict.outputs import video_names, with_times, write_videos
from muse.predict.rows import row_times
from muse.predict.run import find_run
from muse.runs import tracking
from muse.store.prepare import prepare

log = logging.getLogger(__name__)

ARTIFACT_FOLDER = "predictions"


def predict_run(run_id: str, out: os.PathLike | str, media: Iterable[os.PathLike | str] = (),
                package: os.PathLike | str | None = None,
                transcripts: os.PathLike | str | None = None,
                fasttext_model: os.PathLike | str | None = None,
                tracking_uri: str | None = None, log_to_run: bool = False,
                workers: int = 1) -> list[Path]:
    """Predict every video of `media` (files or folders) or of `package` with run `run_id`;
    returns the files written in `out` (a new or empty folder)."""
    media = list(media)
    if bool(media) == (package is not None):
        raise PredictError("give media files (--media) or a package (--package), not both")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PredictError(f"{out} already exists and is not empty; choose a new folder")
    run = find_run(run_id, tracking_uri)
    inputs = run_inputs(run.config)
    if media:
        check_extractable(run_id, inputs)  # before any work
    models = [load_model(path) for path in run.checkpoints]
    if {model.task for model in models} != {inputs.task}:
        raise PredictError(f"run {run_id} is a {inputs.task} run, its checkpoints "
                           f"{', '.join(map(str, run.checkpoints))} are not")
    audio_rate = max(model.audio_rate for model in models)
    with tempfile.TemporaryDirectory(prefix="muse-predict-") as work:
        if media:
            log.info("extracting %s from %d media input(s)", ", ".join(inputs.store_features),
                     len(media))
            package = extract_package(media, Path(work) / "package", transcripts=transcripts,
                                      fasttext_model=fasttext_model,
                                      features=inputs.store_features, workers=workers)
        assert package is not None
        log.info("preparing the %s store (%s%s)", inputs.task, ", ".join(inputs.store_features),
                 f", audio at {audio_rate} Hz" if audio_rate else "")
        store = prepare(Path(package), Path(work) / "data", tasks=[inputs.task],
                        features=list(inputs.store_features), audio_rate=audio_rate)[inputs.task]
        log.info("predicting with %s", ", ".join(map(str, run.checkpoints)))
        frame = with_times(predict_store(models, store), row_times(store), inputs.task)
        names = video_names(Path(package))
        with staged_folder(out, PredictError) as staging:
            written = [out / path.name for path in
                       write_videos(frame, inputs.task, names, staging)]
    log.info("%d file(s) written to %s", len(written), out)
    if log_to_run:
        folder = f"{ARTIFACT_FOLDER}/{out.name}"
        try:
            tracking.open_store(run.tracking_uri).log_artifacts(run.run_id, str(out), folder)
        except (MlflowException, OSError) as error:
            raise PredictError(f"the files are in {out}, but recording them under run "
                               f"{run.run_id} failed ({type(error).__name__}: {error})") from error
        log.info("recorded under run %s as %s/%s/", run.run_id, ARTIFACT_FOLDER, out.name)
    return written
