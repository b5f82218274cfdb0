"""Serve the built models with the LiteRT interpreter: loaded once per process, shared by all requests.

Each model is a `.tflite` file and a `.labels.json` file in the models
directory, written by `infra/build_model.py`. The interpreter is created on
first use and kept in a module global; XNNPACK runs one inference on all cores,
and a lock keeps concurrent requests from sharing its tensors at the same time.
No TensorFlow is imported here.

When the models directory also holds the model's backbone and head
(`<name>_features.tflite`, `<name>.head.npz`), the model is served as backbone
+ head, the one path custom models take too, so a process holds one backbone
for all of them; same top-5 and latency as the whole classifier (measured).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from common import errors, images
from common.classnames import normalise_class
from common.config import settings

if TYPE_CHECKING:
    from common.backbone import Backbone
    from common.heads import Head

_models: dict[str, Model] = {}
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
    interpreter: Any
    input_index: int
    output_index: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    # backbone + head, when built: then `interpreter` is None and these serve the model
    backbone: Backbone | None = None
    head: Head | None = None
    # class name -> which of the 1000 classes it covers (computed once per name)
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, models_dir: Path) -> Model:
        from ai_edge_litert.interpreter import Interpreter

        labels = json.loads((models_dir / f"{name}.labels.json").read_text())
        classes = labels["classes"]
        backbone, head = _backbone_and_head(name, models_dir, [c["label"] for c in classes])
        interpreter = None
        if backbone is None:
            interpreter = Interpreter(model_path=str(models_dir / f"{name}.tflite"), num_threads=os.cpu_count() or 1)
            interpreter.allocate_tensors()
        names: dict[str, set[str]] = {}
        for wnid, lemmas in labels["lemmas"].items():
            names.setdefault(wnid, set()).add(wnid)
            for lemma in lemmas:
                names.setdefault(_key(lemma), set()).add(wnid)
        return cls(name=name, input_size=labels["input_size"], resize=labels["resize"],
                   labels=[c["label"] for c in classes], wnids=[c["wnid"] for c in classes],
                   ancestry=[frozenset(c["ancestors"]) for c in classes], names=names, interpreter=interpreter,
                   input_index=interpreter.get_input_details()[0]["index"] if interpreter else -1,
                   output_index=interpreter.get_output_details()[0]["index"] if interpreter else -1,
                   backbone=backbone, head=head)

    # -- inference -------------------------------------------------------------------

    def prepare(self, data: bytes) -> np.ndarray:
        return images.prepare(data, self.input_size, self.resize)

    def logits(self, crop: np.ndarray) -> np.ndarray:
        """The 1000 logits for one HxWx3 uint8 crop."""
        if self.backbone is not None and self.head is not None:
            return self.head.logits(self.backbone.embed(crop)).astype(np.float64)
        batch = crop[np.newaxis].astype(np.float32)
        with self.lock:
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
            return np.asarray(self.interpreter.get_tensor(self.output_index)[0], dtype=np.float64)

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


def _backbone_and_head(name: str, models_dir: Path, labels: list[str]) -> tuple[Backbone | None, Head | None]:
    """The shared backbone and this model's head, when both are built and the head's labels are this model's."""
    from common.backbone import features_path, get_backbone
    from common.heads import head_paths, load_head

    if not (features_path(models_dir, name).is_file() and all(p.is_file() for p in head_paths(models_dir, name))):
        return None, None
    head = load_head(models_dir, name)
    if head.labels != labels:  # built at different times: serve the whole classifier
        return None, None
    return get_backbone(name), head


def available() -> list[str]:
    """Built-in models with a labels file and either a whole classifier or the backbone and a head (a bundle
    carries only the latter: the backbone is shared by every head)."""
    from common.backbone import features_path
    from common.heads import head_paths

    directory = settings().models_dir
    names = (p.name[: -len(".labels.json")] for p in directory.glob("*.labels.json"))
    return sorted(n for n in names if (directory / f"{n}.tflite").is_file() or (
        features_path(directory, n).is_file() and all(p.is_file() for p in head_paths(directory, n))))


def get_model(name: str | None = None) -> Model:
    """The named (or default) model, loaded on first use and kept for the life of the process."""
    name = name or settings().default_model
    model = _models.get(name)
    if model is not None:
        return model
    with _lock:
        if name not in _models:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name not in available():
                have = ", ".join(available()) or "none (build one with `nox -s model`)"
                raise errors.NotFound(f"There is no model named {name!r}. Available: {have}.", code="unknown_model")
            _models[name] = Model.load(name, settings().models_dir)
        return _models[name]


def best_class(scores: dict[str, float], min_score: float) -> str | None:
    """The best-scoring class when it reaches `min_score`, else None (the image is unmatched)."""
    if not scores:
        return None
    name = max(scores, key=lambda c: scores[c])
    return name if scores[name] >= min_score else None
