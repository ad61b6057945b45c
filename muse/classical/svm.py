"""The paper's linear SVM for MuSe-Topic: a C sweep chosen by devel UAR, then a train + devel refit.

One scikit-learn `LinearSVC` per target on per-segment mean features
(`muse.classical.segments`), unscaled as in the paper (`scale=True` puts a `StandardScaler`,
fitted on the same training segments, in front). Each C of the sweep is trained on the
labelled train segments and judged by the official UAR on the labelled devel segments; the
best C wins, and on a tie the smaller C (the stronger regularisation, the simpler model). The
devel predictions come from that train-only model, the test predictions from the chosen C
refit on train + devel, as the paper reports its test results. Unlabelled segments (-1) are
never fitted on.

`FittedSVM` is what a run saves (`svm.skops`): the fitted models with everything needed to
rebuild their input from a store and predict again. The file is written with skops, whose
loading builds only the scikit-learn and numpy types it trusts and never runs code from the
file; a file holding any other type is refused unopened, and so is a pickle (`.joblib`, what
older muse versions saved), whose loading could run anything.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import skops.io
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from muse.classical.segments import Segments
from muse.errors import MuseError
from muse.metrics.functional import uar


@dataclass(frozen=True)
class SVMSettings:
    """The sweep and the classifier's options (`conf/model/svm.yaml`)."""

    Cs: tuple[float, ...]
    scale: bool = False
    balanced: bool = False  # class weights n / (classes * count) instead of none (the paper)
    max_iter: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.Cs or min(self.Cs) <= 0:
            raise MuseError(f"model.Cs={list(self.Cs)}: give one or more positive C values")

    def classifier(self, C: float) -> Pipeline:
        steps = [("scale", StandardScaler())] if self.scale else []
        steps.append(("svm", LinearSVC(C=C, class_weight="balanced" if self.balanced else None,
                                       max_iter=self.max_iter, dual="auto",
                                       random_state=self.seed)))
        return Pipeline(steps)


@dataclass
class TargetFit:
    """One target's sweep (devel UAR x 100 per C, unrounded), chosen C and its two models."""

    target: str
    Cs: tuple[float, ...]
    devel_uar: tuple[float, ...]
    C: float
    devel_model: Pipeline  # trained on train: the devel predictions
    test_model: Pipeline  # refit on train + devel: the test predictions


def choose(Cs: tuple[float, ...], uars: tuple[float, ...]) -> int:
    """Index of the best devel UAR; on a tie the smaller C."""
    return max(range(len(Cs)), key=lambda i: (uars[i], -Cs[i]))


def fit_target(segments: Segments, target: str, settings: SVMSettings) -> TargetFit:
    """Sweep C on train -> devel, keep the best train-only model and refit it on train + devel."""
    x, y = segments.features, segments.labels[target]
    train = segments.labelled(target, "train")
    devel = segments.labelled(target, "devel")
    if len(np.unique(y[train])) < 2:
        raise MuseError(f"{target}: the SVM needs labelled train segments of two classes or "
                        f"more; there are {len(train)} of {len(np.unique(y[train]))} class(es)")
    if not len(devel):
        raise MuseError(f"{target}: no labelled devel segments to choose the SVM's C by")
    models = [settings.classifier(C).fit(x[train], y[train]) for C in settings.Cs]
    uars = tuple(uar(y[devel], model.predict(x[devel])) for model in models)
    best = choose(settings.Cs, uars)
    both = np.concatenate([train, devel])
    refit = settings.classifier(settings.Cs[best]).fit(x[both], y[both])
    return TargetFit(target, settings.Cs, uars, settings.Cs[best], models[best], refit)


@dataclass
class FittedSVM:
    """A trained run: its models per target and how to rebuild their input from a store."""

    task: str
    store_path: str
    table: str
    features: list[str]
    feature_dim: int
    targets: list[str]
    scored: list[str]
    settings: SVMSettings
    fits: dict[str, TargetFit]

    def predict(self, features: np.ndarray, partition: str) -> dict[str, np.ndarray]:
        """{target: classes}: devel from the train-only models, test from the refit ones."""
        if features.shape[1] != self.feature_dim:
            raise MuseError(f"the SVM was fitted on {self.feature_dim} feature columns "
                            f"({', '.join(self.features)}), the store gives {features.shape[1]}")
        if partition not in ("devel", "test"):
            raise ValueError(f"no SVM predictions for partition {partition!r}: devel or test")
        return {target: (fit.devel_model if partition == "devel" else fit.test_model)
                .predict(features) for target, fit in self.fits.items()}

    def save(self, path: Path) -> Path:
        """The models and their description in one skops file, written whole or not at all."""
        path.parent.mkdir(parents=True, exist_ok=True)
        description = {name: getattr(self, name) for name in _DESCRIBED}
        description["settings"] = asdict(self.settings)
        description["fits"] = {target: {"Cs": fit.Cs, "devel_uar": fit.devel_uar, "C": fit.C}
                               for target, fit in self.fits.items()}
        state = {"format": FILE_FORMAT, "version": FILE_VERSION,
                 "description": json.dumps(description),
                 "models": {target: {"devel": fit.devel_model, "test": fit.test_model}
                            for target, fit in self.fits.items()}}
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            skops.io.dump(state, partial)
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
        return path

    @staticmethod
    def load(path: Path) -> FittedSVM:
        """A saved SVM; MuseError for any other file, which is never executed or unpickled."""
        state = _read_state(Path(path))
        try:
            description = json.loads(state["description"])
            settings = description.pop("settings")
            settings["Cs"] = tuple(settings["Cs"])
            models = state["models"]
            fits = {target: TargetFit(target, tuple(fit["Cs"]), tuple(fit["devel_uar"]),
                                      fit["C"], models[target]["devel"], models[target]["test"])
                    for target, fit in description.pop("fits").items()}
            return FittedSVM(**description, settings=SVMSettings(**settings), fits=fits)
        except (KeyError, TypeError, ValueError) as error:
            raise MuseError(f"{path}: not a saved muse SVM of format {FILE_VERSION} "
                            f"({type(error).__name__}: {error})") from error


FILE_FORMAT = "muse-svm"
FILE_VERSION = 1
_DESCRIBED = ("task", "store_path", "table", "features", "feature_dim", "targets", "scored")
_PICKLE = ("muse saves SVMs with skops (svm.skops); a .joblib from an older muse is a pickle, "
           "which muse never loads because loading one can run any code: train the SVM again "
           "(python train.py task=topic model=svm ...)")


def _read_state(path: Path) -> dict:
    """The saved dictionary, after checking that the file holds only types skops trusts."""
    if not path.is_file():
        raise MuseError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise MuseError(f"{path}: not a saved muse SVM; {_PICKLE}")
    try:
        untrusted = skops.io.get_untrusted_types(file=path)
        if untrusted:
            raise MuseError(f"{path}: not a saved muse SVM: it holds types a muse SVM never "
                            f"has ({', '.join(untrusted)}); refused, nothing was loaded")
        state = skops.io.load(path)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise MuseError(f"{path}: cannot read the saved SVM ({type(error).__name__}: "
                        f"{error})") from error
    if not isinstance(state, dict) or state.get("format") != FILE_FORMAT:
        raise MuseError(f"{path}: a skops file, but not a saved muse SVM")
    if state.get("version") != FILE_VERSION:
        raise MuseError(f"{path}: a muse SVM file of version {state.get('version')}; this muse "
                        f"reads version {FILE_VERSION}: train the SVM again")
    return state
