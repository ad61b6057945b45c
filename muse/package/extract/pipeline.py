"""`extract_package`: media files -> a package in the official layout, written atomically.

The package is written into a staging folder next to `out` and renamed into place at the end,
so an interrupted or failed extraction never leaves a half package that looks whole. Every
video is a test video with masked labels unless `labels` gives its curves (and partition).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from tqdm.auto import tqdm

from muse.package.extract.acoustic import worker_pool
from muse.package.extract.decode import MEDIA_SUFFIXES
from muse.package.extract.errors import ExtractError
from muse.package.extract.labels import read_labels
from muse.package.extract.package import ExtractedPackage
from muse.package.extract.text import FastTextModel
from muse.package.extract.transcripts import Words, find_transcript, read_transcript
from muse.package.extract.video import extract_video
from muse.package.staging import staged_folder

log = logging.getLogger(__name__)

EXTRACTABLE = ("egemaps", "lld", "fasttext")
_OPENFACE = "OpenFace and its face models"
NEEDS_WEIGHTS = {
    "deepspectrum": "DeepSpectrum's VGG-19 ImageNet weights",
    "vggface": "VGGFace weights and an MTCNN face detector",
    "xception": "Xception ImageNet weights",
    "gocar": "the GoCaR car-part detector",
    "openpose": "OpenPose and its pose models",
    **{name: _OPENFACE for name in ("au", "gaze", "landmarks_2d", "landmarks_3d", "pdm", "pose")},
}


def resolve_features(features: Iterable[str] | None,
                     fasttext_model: Path | None) -> tuple[str, ...]:
    """The feature sets to extract: by default egemaps and lld, and fasttext given a model."""
    if features is None:
        return ("egemaps", "lld", "fasttext") if fasttext_model else ("egemaps", "lld")
    chosen = tuple(dict.fromkeys(features))
    for name in chosen:
        if name in NEEDS_WEIGHTS:
            raise ExtractError(
                f"feature set {name!r} cannot be extracted here: it needs "
                f"{NEEDS_WEIGHTS[name]}, which muse does not ship and cannot download; "
                f"extractable sets: {', '.join(EXTRACTABLE)}")
        if name not in EXTRACTABLE:
            raise ExtractError(f"unknown feature set {name!r}; extractable sets: "
                               f"{', '.join(EXTRACTABLE)}")
    if "fasttext" in chosen and fasttext_model is None:
        raise ExtractError("feature set 'fasttext' needs a fastText binary model "
                           "(--fasttext-model, e.g. cc.en.300.bin) and transcripts")
    if not {"egemaps", "fasttext"} & set(chosen):
        raise ExtractError("choose egemaps or fasttext too: they give the 250 ms label steps "
                           "that prepare reads (lld is frame-rate only)")
    return chosen


def media_files(paths: Iterable[os.PathLike | str]) -> list[Path]:
    """Files as given, folders expanded to their media files (by suffix, sorted)."""
    found: list[Path] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            found += sorted(p for p in entry.iterdir()
                            if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
        elif entry.is_file():
            found.append(entry)
        else:
            raise ExtractError(f"{entry}: media file or folder not found")
    if not found:
        raise ExtractError("no media files found (looked for "
                           f"{', '.join(MEDIA_SUFFIXES)})")
    stems = [p.stem for p in found]
    repeated = sorted({s for s in stems if stems.count(s) > 1})
    if repeated:
        raise ExtractError(f"media files share the name(s) {repeated}: transcripts and labels "
                           "are matched by name, so rename them")
    return found


def extract_package(media: Iterable[os.PathLike | str], out: os.PathLike | str,
                    transcripts: os.PathLike | str | Mapping[str, os.PathLike | str] | None = None,
                    fasttext_model: os.PathLike | str | None = None,
                    features: Iterable[str] | None = None,
                    labels: os.PathLike | str | None = None, workers: int = 1) -> Path:
    """Extract `media` (files or folders) into a new package at `out` and return its path.

    `transcripts`: a folder holding `<media stem>.csv|.srt|.vtt`, or a mapping from media stem
    to transcript file. `labels`: a CSV of continuous labels (muse.package.extract.labels).
    Video ids are 1..N in the order of the media files; `metadata/media.csv` maps them back.
    `workers` processes share the eGeMAPS windows (the bulk of the time), one per core at most."""
    if workers < 1:
        raise ExtractError(f"workers must be 1 or more, not {workers}")
    files = media_files(media)
    chosen = resolve_features(features, Path(fasttext_model) if fasttext_model else None)
    model = FastTextModel(Path(fasttext_model)) if "fasttext" in chosen else None
    words = {p: _transcript_of(p, transcripts, required="fasttext" in chosen) for p in files}
    curves = _labels_of(files, Path(labels)) if labels is not None else {}
    out = Path(out)
    with staged_folder(out, ExtractError) as staging, contextlib.ExitStack() as stack:
        pool = stack.enter_context(worker_pool(workers)) if workers > 1 else None
        package = ExtractedPackage(staging)
        for video_id, path in enumerate(tqdm(files, desc="muse extract", unit="file",
                                             disable=None), start=1):
            video = extract_video(video_id, path, chosen, words[path], model, pool, workers)
            if video.dropped_words:
                log.warning("%s: %d transcript word(s) lie outside every speech segment "
                            "and are left out", path, video.dropped_words)
            package.add(video, curves.get(path), path.name)
        package.finish()
    return out


def _transcript_of(path: Path, transcripts, required: bool) -> Words | None:
    if transcripts is None:
        found = None
    elif isinstance(transcripts, Mapping):
        given = transcripts.get(path.stem)
        found = Path(given) if given is not None else None
    else:
        folder = Path(transcripts)
        if not folder.is_dir():
            raise ExtractError(f"{folder}: transcript folder not found")
        found = find_transcript(folder, path.stem)
    if found is None:
        if required:
            where = "no transcripts given" if transcripts is None else f"looked in {transcripts}"
            raise ExtractError(f"{path}: fasttext needs a transcript, {path.stem}.csv, .srt or "
                               f".vtt ({where})")
        return None
    return read_transcript(found)


def _labels_of(files: list[Path], table: Path) -> dict:
    curves = read_labels(table)
    by_name = {}
    for path in files:
        for key in (path.name, path.stem):
            if key in curves:
                by_name[path] = curves.pop(key)
                break
    if curves:
        raise ExtractError(f"{table}: labels for file(s) not among the media: "
                           f"{sorted(curves)[:10]}")
    return by_name
