"""How good a trained head is, on the test split: the numbers `GET /models/<name>` reports.

Undefined is reported as null, not as 0: precision of a class the model never
predicted, recall of a class with no test image, ROC AUC of a class absent
from (or alone in) the test split. Macro F1 averages the classes where F1 is
defined (those present in the test split or predicted), as sklearn does with
`zero_division=np.nan`; the tests check every number against sklearn.metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DIGITS = 6


def confusion(y_true: np.ndarray, y_pred: np.ndarray, classes: int) -> np.ndarray:
    """classes x classes counts, rows = true class, columns = predicted class."""
    return np.bincount(y_true * classes + y_pred, minlength=classes * classes).reshape(classes, classes)


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """One-vs-rest ROC AUC as the Mann-Whitney U statistic (ties count half): the chance that a random
    positive scores above a random negative. None when either side is empty."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - counts + (counts + 1) / 2.0)[inverse]  # 1-based, ties share their mean rank
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _ratio(num: float, den: float) -> float | None:
    return round(float(num) / float(den), DIGITS) if den > 0 else None


def evaluate(y_true: Sequence[int] | np.ndarray, probs: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """accuracy, macro_f1, per_class {label: precision, recall, f1, support, roc_auc}, confusion_matrix."""
    y = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    k = len(labels)
    pred = probs.argmax(axis=1) if len(y) else np.empty(0, dtype=np.int64)
    matrix = confusion(y, pred, k)
    tp = np.diag(matrix).astype(np.float64)
    support, predicted = matrix.sum(axis=1), matrix.sum(axis=0)
    per_class: dict[str, dict[str, Any]] = {}
    f1s = []
    for c, label in enumerate(labels):
        fp, fn = predicted[c] - tp[c], support[c] - tp[c]
        f1 = _ratio(2 * tp[c], 2 * tp[c] + fp + fn)
        if f1 is not None:
            f1s.append(2 * tp[c] / (2 * tp[c] + fp + fn))
        auc = roc_auc(y == c, probs[:, c]) if len(y) else None
        per_class[label] = {"precision": _ratio(tp[c], predicted[c]), "recall": _ratio(tp[c], support[c]),
                            "f1": f1, "support": int(support[c]),
                            "roc_auc": None if auc is None else round(auc, DIGITS)}
    return {
        "accuracy": _ratio(float(tp.sum()), len(y)),
        "macro_f1": round(float(np.mean(f1s)), DIGITS) if f1s else None,
        "per_class": per_class,
        "confusion_matrix": {"labels": list(labels), "matrix": matrix.tolist()},
        "test_images": int(len(y)),
    }
