"""The one interface classify, jobs and training use for every model, built-in or custom.

A classifier is a predictor (image bytes -> class probabilities: the backbone's
features through a head, or the whole classifier network) and a vocabulary
(what class names mean: `common.models.vocabulary`). The built-in models and
the custom models are the same class (`common.models.model.Model`); only how
they are found differs (`common.models.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from common.core import errors
from common.models.vocabulary import Vocabulary

Source = bytes | Callable[[], bytes]  # image bytes, or how to read them (a URL fetch, a bucket read)


class Classifier(Protocol):
    name: str
    vocabulary: Vocabulary

    @property
    def labels(self) -> list[str]: ...

    def predict(self, data: bytes) -> np.ndarray: ...

    def predict_many(self, sources: Sequence[Source]) -> list[np.ndarray | errors.AppError]: ...

    def top(self, probs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[dict[str, Any]]: ...

    def class_scores(self, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]: ...

    def resolve(self, name: str) -> object: ...


def read(source: Source) -> bytes:
    return source() if callable(source) else source
