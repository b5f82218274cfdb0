"""Stratified, seeded train/validation/test split (80/10/10 by default).

Each class is split on its own so that every class with at least 5 images has
at least one in validation (which picks the regularisation) and one in test
(which the reported metrics come from). The split depends only on the seed and
on the order of the items given (the dataset lists them sorted), never on the
order in which images were embedded, so a retried or fanned-out run splits the
same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FRACTIONS = (0.8, 0.1, 0.1)
MIN_FOR_HELD_OUT = 5


@dataclass(frozen=True)
class Split:
    """Indices into the item list, each sorted."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def held_out(n: int, fraction: float) -> int:
    """How many of a class's `n` images go to one held-out part: at least one from 5 images up (leaving 3 or
    more to train on); none below, where one image more to learn from is worth more than a shaky score."""
    return max(1, int(round(n * fraction))) if n >= MIN_FOR_HELD_OUT else 0


def stratified_split(classes: Sequence[int] | np.ndarray, seed: int = 0,
                     fractions: tuple[float, float, float] = FRACTIONS) -> Split:
    """Split items, given by their class index, into train/validation/test within each class."""
    y = np.asarray(classes, dtype=np.int64)
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_val, n_test = held_out(len(members), fractions[1]), held_out(len(members), fractions[2])
        parts[1].append(members[:n_val])
        parts[2].append(members[n_val:n_val + n_test])
        parts[0].append(members[n_val + n_test:])

    def joined(chunks: list[np.ndarray]) -> np.ndarray:
        return np.sort(np.concatenate(chunks)) if chunks else np.empty(0, dtype=np.int64)

    return Split(train=joined(parts[0]), validation=joined(parts[1]), test=joined(parts[2]))
