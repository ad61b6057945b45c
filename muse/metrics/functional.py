"""The official MuSe 2020 metrics on whole arrays (numpy, float64).

CCC scores MuSe-Wild and MuSe-Trust; micro-F1, UAR and their 0.66/0.34 blend score MuSe-Topic.
Beside each CCC the official scorer reports the Pearson correlation and the mean absolute error.
Each metric is computed over every row it is given: callers concatenate a whole partition first.

Rounding follows the organisers' evaluation code: every CCC is rounded to 4 decimals before it
is averaged into the Wild score, and F1 and UAR are each rounded to 3 decimals *before* they are
blended (the blend is rounded to 3 decimals again). `classification_scores` applies that order;
the unrounded functions exist for training-time monitoring and for the streaming metrics.

Degenerate inputs (fewer than 2 rows, a constant side, an empty class set) score 0.0, never
NaN (also the Pearson correlation, which pandas, and so the official scorer, leaves NaN there),
so a collapsed model reads as "no agreement" instead of poisoning a log or a ranking.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

F1_WEIGHT = 0.66
UAR_WEIGHT = 0.34
CCC_DECIMALS = 4
PERCENT_DECIMALS = 3


def _paired(labels: ArrayLike, preds: ArrayLike, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(labels, dtype=dtype).ravel()
    y = np.asarray(preds, dtype=dtype).ravel()
    if x.shape != y.shape:
        raise ValueError(f"labels and predictions differ in length: {x.size} vs {y.size}")
    return x, y


def _finite_pair(labels: ArrayLike, preds: ArrayLike, metric: str) -> tuple[np.ndarray, ...]:
    x, y = _paired(labels, preds, np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(f"{metric} needs finite values; drop masked or missing rows first")
    return x, y


def _ccc(labels: ArrayLike, preds: ArrayLike, var_ddof: int) -> float:
    x, y = _finite_pair(labels, preds, "CCC")
    # An exactly constant side has no covariance; testing it directly avoids the round-off
    # residue of mean-centring (e.g. 1e-17) that would otherwise give a tiny nonzero CCC.
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    mean_x, mean_y = x.mean(), y.mean()
    cov = np.mean((x - mean_x) * (y - mean_y))
    denominator = x.var(ddof=var_ddof) + y.var(ddof=var_ddof) + (mean_x - mean_y) ** 2
    return float(2.0 * cov / denominator) if denominator > 0 else 0.0


def official_ccc(labels: ArrayLike, preds: ArrayLike) -> float:
    """The challenge's CCC: variances divide by N-1, the covariance by N (below textbook)."""
    return _ccc(labels, preds, var_ddof=1)


def textbook_ccc(labels: ArrayLike, preds: ArrayLike) -> float:
    """Lin's CCC with population moments throughout (all divide by N)."""
    return _ccc(labels, preds, var_ddof=0)


def pearson(labels: ArrayLike, preds: ArrayLike) -> float:
    """Pearson's correlation as the official scorer takes it (pandas `Series.corr`)."""
    x, y = _finite_pair(labels, preds, "Pearson correlation")
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return 0.0
    # pandas' own two-pass sum, not np.corrcoef: the 4th decimal must match the scorer's.
    return float(pd.Series(x).corr(pd.Series(y)))


def mean_absolute_error(labels: ArrayLike, preds: ArrayLike) -> float:
    """Mean of |label - prediction| over every row (0.0 for no rows)."""
    x, y = _finite_pair(labels, preds, "MAE")
    return float(np.mean(np.abs(x - y))) if x.size else 0.0


def _classes(labels: ArrayLike, preds: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x, y = _paired(labels, preds, np.float64)
    # Casting 1.7 to class 1 would hide a regression output fed to a classification metric.
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or (x % 1).any() or (y % 1).any():
        raise ValueError("class metrics need integer class ids")
    return x.astype(np.int64), y.astype(np.int64)


def uar(labels: ArrayLike, preds: ArrayLike) -> float:
    """Unweighted average recall x 100 over the classes seen in labels or predictions.

    Same class set as sklearn's `recall_score(average="macro")`: a class that is only predicted
    has no support and counts with recall 0, so spraying unseen classes is penalised.
    """
    x, y = _classes(labels, preds)
    classes = np.union1d(x, y)
    if classes.size == 0:
        return 0.0
    support = np.array([np.sum(x == c) for c in classes])
    hits = np.array([np.sum((x == c) & (y == c)) for c in classes])
    recall = np.divide(hits, support, out=np.zeros(classes.size), where=support > 0)
    return float(100.0 * recall.mean())


def micro_f1(labels: ArrayLike, preds: ArrayLike) -> float:
    """Micro-averaged F1 x 100; for single-label multiclass data this equals accuracy."""
    x, y = _classes(labels, preds)
    return float(100.0 * np.mean(x == y)) if x.size else 0.0


def topic_score(f1: float, uar_value: float) -> float:
    """The MuSe-Topic blend 0.66 * F1 + 0.34 * UAR (unrounded; see `classification_scores`)."""
    return F1_WEIGHT * f1 + UAR_WEIGHT * uar_value


def round_ccc(value: float) -> float:
    """A CCC as the challenge reports it: 4 decimals."""
    return round(float(value), CCC_DECIMALS)


def round_continuous(value: float) -> float:
    """A Pearson correlation or MAE as the official scorer prints it: 4 decimals, as the CCC."""
    return round(float(value), CCC_DECIMALS)


def round_percent(value: float) -> float:
    """An F1, UAR or Topic score as the challenge reports it: 3 decimals."""
    return round(float(value), PERCENT_DECIMALS)


def continuous_scores(labels: ArrayLike, preds: ArrayLike) -> dict[str, float]:
    """Official CCC, Pearson correlation and MAE of one continuous target, each rounded."""
    return {"ccc": round_ccc(official_ccc(labels, preds)),
            "pearson": round_continuous(pearson(labels, preds)),
            "mae": round_continuous(mean_absolute_error(labels, preds))}


def classification_scores(labels: ArrayLike, preds: ArrayLike) -> dict[str, float]:
    """Official F1, UAR and score of one MuSe-Topic target, rounded in the organisers' order."""
    f1 = round_percent(micro_f1(labels, preds))
    recall = round_percent(uar(labels, preds))
    return {"f1": f1, "uar": recall, "score": round_percent(topic_score(f1, recall))}
