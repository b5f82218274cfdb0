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
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common.core import errors, parallel
from common.core.config import settings
from common.media import images
from common.models import layout as model_layout
from common.models.classnames import normalise_class
from common.models.interpreters import Pool

if TYPE_CHECKING:
    from common.models.backbone import Backbone
    from common.models.heads import Head

Source = bytes | Callable[[], bytes]  # image bytes, or how to read them (a URL fetch, a bucket read)
_models: dict[str, Model] = {}
log = logging.getLogger("imageclassify.model")
_lock = threading.Lock()
WNID = re.compile(r"n\d{8}")


def _key(name: str) -> str:
    return normalise_class(name)


@dataclass
class Model:
    name: str
    input_size: int
    resize: int
    labels: list[str]
    wnids: list[str]
    # class index -> set of ancestor WordNet ids (including its own)
    ancestry: list[frozenset[str]]
    # normalized lemma name or WordNet id -> the WordNet ids it names
    names: dict[str, set[str]]
    # the whole classifier's interpreters; None when the backbone and head below serve the model
    pool: Pool | None = None
    backbone: Backbone | None = None
    head: Head | None = None
    # class name -> which of the 1000 classes it covers (computed once per name)
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, models_dir: Path) -> Model:
        labels = json.loads(model_layout.labels(models_dir, name).read_text())
        classes = labels["classes"]
        backbone, head = _backbone_and_head(name, models_dir, [c["label"] for c in classes])
        config = settings()
        pool = None if backbone is not None else Pool(models_dir / f"{name}.tflite", config.models.model_interpreters,
                                                      config.models.model_threads, config.models.model_lead_threads)
        names: dict[str, set[str]] = {}
        for wnid, lemmas in labels["lemmas"].items():
            names.setdefault(wnid, set()).add(wnid)
            for lemma in lemmas:
                names.setdefault(_key(lemma), set()).add(wnid)
        model = cls(name=name, input_size=labels["input_size"], resize=labels["resize"],
                    labels=[c["label"] for c in classes], wnids=[c["wnid"] for c in classes],
                    ancestry=[frozenset(c["ancestors"]) for c in classes], names=names, pool=pool,
                    backbone=backbone, head=head)
        if config.models.model_warmup:
            model.predict(_warmup_image())  # loads Pillow's format plug-ins: ~20 ms less for the first request
        return model

    # -- inference -------------------------------------------------------------------

    def prepare(self, data: bytes) -> np.ndarray:
        return images.prepare(data, self.input_size, self.resize)

    def logits(self, crop: np.ndarray) -> np.ndarray:
        """The 1000 logits for one HxWx3 uint8 crop."""
        if self.backbone is not None and self.head is not None:
            return self.head.logits(self.backbone.embed(crop)).astype(np.float64)
        assert self.pool is not None
        return self.pool.run(crop).astype(np.float64)

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """Softmax over the 1000 classes for one HxWx3 uint8 crop."""
        logits = self.logits(crop)
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    def top(self, probs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[dict[str, Any]]:
        order = np.argsort(probs)[::-1][:top_k]
        return [{"label": self.labels[i], "score": round(float(probs[i]), 5), "class_id": int(i),
                 "wnid": self.wnids[i]} for i in order if probs[i] >= min_score]

    def predict(self, data: bytes) -> np.ndarray:
        """Class probabilities for image file bytes (decode, crop, infer)."""
        return self.probabilities(self.prepare(data))

    def predict_many(self, sources: Sequence[Source]) -> list[np.ndarray | errors.AppError]:
        """`predict` for each image (its bytes, or a function that reads them), spread over the pool; an
        image that fails (undecodable, unreachable ...) has its `AppError` in its place."""
        pool = self.backbone.pool if self.backbone is not None else self.pool
        assert pool is not None
        return parallel.outcomes(lambda source: self.predict(read(source)), sources, pool.size)

    # -- class matching --------------------------------------------------------------

    def resolve(self, name: str) -> set[str]:
        """The WordNet ids a user's class name stands for; an unknown name is a 400 with near matches."""
        key = name.strip() if WNID.fullmatch(name.strip()) else _key(name)
        if key in self.names:
            return self.names[key]
        near = difflib.get_close_matches(key, [k for k in self.names if not WNID.fullmatch(k)], n=5, cutoff=0.75)
        hint = (f" Did you mean: {', '.join(near)}?" if near
                else " Use an ImageNet label or a WordNet category such as dog, vehicle or food.")
        raise errors.BadRequest(f"Unknown class {name!r}.{hint}", code="unknown_class")

    def class_scores(self, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
        """Per requested class, the summed probability of the ImageNet classes under it in WordNet."""
        return {name: float(probs[self.mask(name)].sum()) for name in classes}

    def mask(self, name: str) -> np.ndarray:
        mask = self.masks.get(name)
        if mask is None:
            wanted = self.resolve(name)
            mask = np.fromiter((not wanted.isdisjoint(a) for a in self.ancestry), dtype=bool, count=len(self.ancestry))
            self.masks[name] = mask
        return mask


def read(source: Source) -> bytes:
    return source() if callable(source) else source


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


def available() -> list[str]:
    """Built-in models with a labels file and either a whole classifier or the backbone and a head (a bundle
    carries only the latter: the backbone is shared by every head)."""
    directory = settings().models.models_dir
    names = (p.name[: -len(".labels.json")] for p in directory.glob("*.labels.json"))
    return sorted(n for n in names if model_layout.servable(directory, n))


def get_model(name: str | None = None) -> Model:
    """The named (or default) model, loaded on first use and kept for the life of the process."""
    name = name or settings().models.default_model
    model = _models.get(name)
    if model is not None:
        return model
    with _lock:
        if name not in _models:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name not in available():
                have = ", ".join(available()) or "none (build one with `nox -s model`)"
                raise errors.NotFound(f"There is no model named {name!r}. Available: {have}.", code="unknown_model")
            _models[name] = Model.load(name, settings().models.models_dir)
        return _models[name]


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
