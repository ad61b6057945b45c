"""The official scores of the noiseless signal against the gold labels: what a perfect model
that recovered the planted signal would reach. Private copies of the official formulas, so the
generator depends on nothing that reads packages.
"""

from __future__ import annotations

import numpy as np


def ccc(gold: np.ndarray, prediction: np.ndarray) -> float:
    """Official MuSe CCC: variances divide by N-1, the covariance by N."""
    x, y = np.asarray(gold, dtype=np.float64), np.asarray(prediction, dtype=np.float64)
    covariance = np.mean((x - x.mean()) * (y - y.mean()))
    denominator = x.var(ddof=1) + y.var(ddof=1) + (x.mean() - y.mean()) ** 2
    return round(float(2.0 * covariance / denominator), 4)


def topic_score(gold: np.ndarray, prediction: np.ndarray) -> float:
    """Official MuSe-Topic score: 0.66 * micro-F1 + 0.34 * UAR, both in percent.

    UAR averages the recall of every class seen in gold or prediction (a class only predicted
    has recall 0), as scikit-learn's macro recall does.
    """
    gold, prediction = np.asarray(gold), np.asarray(prediction)
    f1 = round(100.0 * float(np.mean(gold == prediction)), 3)  # micro-F1 = accuracy here
    recalls = [np.mean(prediction[gold == c] == c) if np.any(gold == c) else 0.0
               for c in np.union1d(gold, prediction)]
    uar = round(100.0 * float(np.mean(recalls)), 3)
    return round(0.66 * f1 + 0.34 * uar, 3)
