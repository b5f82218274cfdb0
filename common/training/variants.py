"""Which views train the head: none, the views without mirrors, or all of them, chosen on the validation split.

Views help a head when they vary what a class varies by; when they change the
class (a mirrored arrow or letter), the head learns worse than from the images
alone. The views are embedded once; each variant is a subset of the training
rows, the head is fitted on each (seconds of numpy) and the one with the lowest
validation loss is kept, the simpler on a tie, so a run is never worse on
validation than its simplest form. A variant whose rows are those of a simpler
one is not fitted twice. Without a validation split (classes too small to hold
images out) nothing can tell the variants apart, and every view is used.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.training.augment import flipped
from common.training.fit import Fitted, fit_softmax

VARIANTS = ("none", "no_flips", "all")  # simplest first: a tie keeps the simpler


def subsets(views: np.ndarray) -> dict[str, np.ndarray]:
    """The training rows of each variant (a mask over `views`, the rows' view numbers), duplicates dropped."""
    rows = {"none": views == 0, "no_flips": ~flipped(views), "all": np.ones(len(views), dtype=bool)}
    kept: dict[str, np.ndarray] = {}
    for name in VARIANTS:
        if not any(np.array_equal(rows[name], other) for other in kept.values()):
            kept[name] = rows[name]
    return kept


def fit_best(x_train: np.ndarray, y_train: np.ndarray, views: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
             classes: int, max_seconds: float) -> tuple[Fitted, dict[str, Any]]:
    """The head of the variant with the lowest validation loss, and what was chosen among what (for the
    model's metrics). Each variant gets an equal share of `max_seconds`; a subset is fitted on a copy that is
    standardised in place, so memory stays at two matrices of the training rows at most."""
    chosen = subsets(views) if len(y_val) else {"all": np.ones(len(views), dtype=bool)}
    best: tuple[str, Fitted] | None = None
    tried: dict[str, dict[str, Any]] = {}
    for name, rows in chosen.items():
        whole = bool(rows.all())
        fitted = fit_softmax(x_train if whole else x_train[rows], y_train[rows], x_val, y_val, classes,
                             max_seconds=max_seconds / len(chosen), overwrite=not whole)
        tried[name] = {"validation_loss": round(fitted.validation_loss, 6), "train_rows": int(rows.sum())}
        if best is None or fitted.validation_loss < best[1].validation_loss:
            best = (name, fitted)
    assert best is not None
    return best[1], {"chosen": best[0], "variants": tried}
