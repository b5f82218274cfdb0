"""Serve the built models with the LiteRT interpreter: loaded once per process, shared by all requests.

Each model is a `.tflite` file and a `.labels.json` file in the models
directory, written by `infra/build_model.py`. It is loaded on first use (or at
start-up, `warm`) and kept in a module global, served by a small pool of
interpreters so that concurrent requests infer side by side
(`common.models.interpreters`); a batch spreads its images over the pool
(`predict_many`). No TensorFlow is imported here.

When the models directory also holds the model's backbone and head
(`<name>_features.tflite`, `<name>.head.npz`), the model is served as backbone
+ head, the one path custom models take too, so a process holds one backbone
for all of them; same top-5 and latency as the whole classifier (measured).
`Model` is the one implementation of `common.models.classifier.Classifier`: a
custom model is a `Model` too (`common.models.registry`); what class names
mean is its vocabulary (`common.models.vocabulary`), read without an interpreter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.core import errors, parallel
from common.core.config import settings
from common.core.lazy import PerKey
from common.media import images
from common.models import layout as model_layout
from common.models import vocabulary
from common.models.classifier import Source, read
from common.models.interpreters import Pool
from common.models.vocabulary import Vocabulary, available

if TYPE_CHECKING:
    from common.models.backbone import Backbone
    from common.models.heads import Head

__all__ = ["Model", "Source", "available", "best_class", "get_model", "read", "warm"]
log = logging.getLogger("imageclassify.model")


@dataclass
class Model:
    """A classifier (`common.models.classifier.Classifier`): a predictor and a vocabulary. The predictor is the
    backbone plus a head (every custom model, and a built-in one whose split files are present) or the whole
    classifier's interpreters."""

    name: str
    vocabulary: Vocabulary
    input_size: int
    resize: int
    pool: Pool | None = None  # the whole classifier's interpreters; None when a backbone and head serve it
    backbone: Backbone | None = None
    head: Head | None = None

    @classmethod
    def load(cls, name: str, models_dir: Path) -> Model:
        words = vocabulary.builtin(name)
        backbone, head = _backbone_and_head(name, models_dir, words.labels)
        config = settings()
        pool = None if backbone is not None else Pool(models_dir / f"{name}.tflite", config.models.model_interpreters,
                                                      config.models.model_threads, config.models.model_lead_threads)
        model = cls(name=name, vocabulary=words, input_size=words.input_size, resize=words.resize, pool=pool,
                    backbone=backbone, head=head)
        if config.models.model_warmup:
            model.predict(_warmup_image())  # loads Pillow's format plug-ins: ~20 ms less for the first request
        return model

    @property
    def labels(self) -> list[str]:
        return self.vocabulary.labels

    # -- inference -------------------------------------------------------------------

    def prepare(self, data: bytes) -> np.ndarray:
        return images.prepare(data, self.input_size, self.resize)

    def logits(self, crop: np.ndarray) -> np.ndarray:
        """The class logits for one HxWx3 uint8 crop: the backbone's features through the head, or the whole
        classifier."""
        if self.backbone is not None and self.head is not None:
            return self.head.logits(self.backbone.embed(crop)).astype(np.float64)
        assert self.pool is not None
        return self.pool.run(crop).astype(np.float64)

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """Softmax over the classes for one HxWx3 uint8 crop."""
        logits = self.logits(crop)
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    def predict(self, data: bytes) -> np.ndarray:
        """Class probabilities for image file bytes (decode, crop, infer)."""
        return self.probabilities(self.prepare(data))

    def predict_many(self, sources: Sequence[Source]) -> list[np.ndarray | errors.AppError]:
        """`predict` for each image (its bytes, or a function that reads them), spread over the pool; an
        image that fails (undecodable, unreachable ...) has its `AppError` in its place."""
        pool = self.backbone.pool if self.backbone is not None else self.pool
        assert pool is not None
        return parallel.outcomes(lambda source: self.predict(read(source)), sources, pool.size)

    # -- class names: the vocabulary's ---------------------------------------------------

    def top(self, probs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[dict[str, Any]]:
        return self.vocabulary.top(probs, top_k, min_score)

    def resolve(self, name: str) -> object:
        return self.vocabulary.resolve(name)

    def class_scores(self, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
        return self.vocabulary.class_scores(probs, classes)


def _warmup_image() -> bytes:
    """A small JPEG made here (nothing shipped, nothing downloaded): decoding it loads Pillow's plug-ins."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 110, 100)).save(out, "JPEG")
    return out.getvalue()


def _backbone_and_head(name: str, models_dir: Path, labels: list[str]) -> tuple[Backbone | None, Head | None]:
    """The shared backbone and this model's head, when both are built and the head's labels are this model's."""
    from common.models.backbone import get_backbone
    from common.models.heads import load_head

    if not all(p.is_file() for p in model_layout.split(models_dir, name)):
        return None, None
    head = load_head(models_dir, name)
    if head.labels != labels:  # built at different times: serve the whole classifier
        return None, None
    return get_backbone(name), head


def _load(name: str) -> Model:
    vocabulary.check_builtin(name)
    return Model.load(name, settings().models.models_dir)


_models: PerKey[str, Model] = PerKey(_load)


def get_model(name: str | None = None) -> Model:
    """The named (or default) model, loaded on first use and kept for the life of the process."""
    return _models.get(name or settings().models.default_model)


def warm() -> None:
    """Load the default model at start-up (a function's import), so the first request pays neither the load nor
    the first decode. Off with MODEL_WARMUP=0; a missing model is only logged here: the request that needs it
    gets the proper error."""
    if not settings().models.model_warmup:
        return
    try:
        get_model()
    except (errors.AppError, RuntimeError, OSError) as exc:
        log.warning("model not loaded at start-up: %s", getattr(exc, "message", exc))


def best_class(scores: dict[str, float], min_score: float) -> str | None:
    """The best-scoring class when it reaches `min_score`, else None (the image is unmatched)."""
    if not scores:
        return None
    name = max(scores, key=lambda c: scores[c])
    return name if scores[name] >= min_score else None
