"""The fusion methods, one target at a time: `mean`, `weighted` and `learned`.

A member's input for a target is a matrix of rows: one column of values for a continuous
target; for a class target its class probabilities, or, for a member that saved none, its
labels as one-hot columns (a vote). Every method gives the same shape back: the fused values,
or the fused class scores whose argmax is the fused label.

* `mean`: the members' mean (for classes: the mean probability, or the share of the votes).
* `weighted`: a weighted mean, the weights proportional to each member's devel score of that
  target (its CCC, clipped at 0; a class target's 0.66 F1 + 0.34 UAR), summing to 1 (equal
  weights when every score is 0). The weights are chosen on devel, so its devel score is
  somewhat optimistic; the test score is not.
* `learned`: a ridge regression over the members' values (continuous), a logistic regression
  over their class scores (classes). Runs save devel and test predictions only, so it is
  cross-fitted over devel videos: each devel video is predicted by a model fitted on the other
  folds of videos (`FOLDS` at most), and test by one fitted on every labelled devel row. No
  row is ever predicted by a model that saw its label.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from muse.errors import FusionError

METHODS = ("mean", "weighted", "learned")
FOLDS = 5
RIDGE_ALPHA = 1.0
Predictor = Callable[[np.ndarray], np.ndarray]
Fitter = Callable[[np.ndarray, np.ndarray], Predictor]


@dataclass(frozen=True)
class TargetInputs:
    """One target's member inputs on devel and test, with what `weighted` and `learned` use.

    `devel` and `test`: per member a (rows, columns) matrix; `labels`: the devel labels (NaN,
    or -1 for classes, where masked); `videos`: the devel rows' video ids; `scores`: per member
    its devel score of the target (None where it has none).
    """

    target: str
    classes: bool
    devel: list[np.ndarray]
    test: list[np.ndarray]
    labels: np.ndarray
    videos: np.ndarray
    scores: list[float | None]


@dataclass(frozen=True)
class Fused:
    """A target's fused devel and test matrices and what the method chose (for the run)."""

    devel: np.ndarray
    test: np.ndarray
    chosen: dict


def one_hot(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes)[np.asarray(labels, dtype=np.int64)]


def mean(inputs: TargetInputs) -> Fused:
    return Fused(np.mean(inputs.devel, axis=0), np.mean(inputs.test, axis=0), {})


def devel_weights(inputs: TargetInputs) -> np.ndarray:
    """Weights proportional to the members' devel scores (module doc)."""
    if any(score is None for score in inputs.scores):
        raise FusionError(f"weighted fusion of {inputs.target}: a member has no devel "
                          f"{inputs.target} score to weigh it by")
    scores = np.clip(np.array(inputs.scores, dtype=np.float64), 0.0, None)
    if scores.sum() == 0:
        return np.full(len(scores), 1.0 / len(scores))
    return scores / scores.sum()


def weighted(inputs: TargetInputs) -> Fused:
    weights = devel_weights(inputs)
    devel, test = (np.tensordot(weights, np.stack(matrices), axes=1)
                   for matrices in (inputs.devel, inputs.test))
    return Fused(devel, test, {"weights": [round(float(w), 6) for w in weights]})


def _labelled(labels: np.ndarray, classes: bool) -> np.ndarray:
    values = np.asarray(labels, dtype=np.float64)
    return ~np.isnan(values) & ((values >= 0) if classes else True)


def fit_ridge(x: np.ndarray, y: np.ndarray) -> Predictor:
    model = Ridge(alpha=RIDGE_ALPHA).fit(x, y)
    return lambda rows: model.predict(rows)[:, None]


def class_fitter(classes: int) -> Fitter:
    """A logistic regression whose predicted probabilities fill all `classes` columns."""
    def fit(x: np.ndarray, y: np.ndarray) -> Predictor:
        seen = np.unique(y).astype(np.int64)
        if len(seen) < 2:  # a fold with one class: that class, for certain
            return lambda rows: np.tile(one_hot(seen, classes), (len(rows), 1))
        model = LogisticRegression(max_iter=1000).fit(x, y.astype(np.int64))

        def predict(rows: np.ndarray) -> np.ndarray:
            scores = np.zeros((len(rows), classes))
            scores[:, model.classes_.astype(np.int64)] = model.predict_proba(rows)
            return scores
        return predict
    return fit


def folds_of(videos: np.ndarray) -> np.ndarray:
    """Per row, its fold: the devel videos dealt in turn to at most `FOLDS` folds."""
    ordered = np.unique(videos)
    if len(ordered) < 2:
        raise FusionError("learned fusion is cross-fitted over devel videos and needs two "
                          f"devel videos or more; there are {len(ordered)}")
    folds = min(FOLDS, len(ordered))
    return np.searchsorted(ordered, videos) % folds


def cross_fit(fit: Fitter, devel: np.ndarray, labels: np.ndarray, videos: np.ndarray,
              test: np.ndarray, classes: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Out-of-fold devel predictions, test predictions of a model fitted on all of devel, and
    the number of folds: no row is predicted by a model fitted on its own labels."""
    labelled = _labelled(labels, classes)
    if not labelled.any():
        raise FusionError("learned fusion needs devel labels to fit on; devel has none")
    fold = folds_of(videos)
    out = None
    for held in range(fold.max() + 1):
        rows = fold == held
        fitted = labelled & ~rows
        if not fitted.any():
            raise FusionError(f"learned fusion: devel fold {held} leaves no labelled rows "
                              "to fit on")
        predicted = fit(devel[fitted], labels[fitted])(devel[rows])
        if out is None:
            out = np.zeros((len(devel), predicted.shape[1]))
        out[rows] = predicted
    return out, fit(devel[labelled], labels[labelled])(test), int(fold.max() + 1)


def learned(inputs: TargetInputs) -> Fused:
    devel, test = np.hstack(inputs.devel), np.hstack(inputs.test)
    fit = class_fitter(inputs.devel[0].shape[1]) if inputs.classes else fit_ridge
    fused_devel, fused_test, folds = cross_fit(fit, devel, inputs.labels, inputs.videos, test,
                                               inputs.classes)
    model = "logistic regression" if inputs.classes else f"ridge (alpha {RIDGE_ALPHA})"
    return Fused(fused_devel, fused_test, {
        "model": model,
        "validation": f"devel: out-of-fold over {folds} folds of devel videos; test: fitted on "
                      "every labelled devel row"})


FUSE: dict[str, Callable[[TargetInputs], Fused]] = {
    "mean": mean, "weighted": weighted, "learned": learned}


def fuse_target(method: str, inputs: TargetInputs) -> Fused:
    if method not in FUSE:
        raise FusionError(f"--method {method}: choose from {', '.join(METHODS)}")
    return FUSE[method](inputs)
