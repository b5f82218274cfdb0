"""Serve the built models with the LiteRT interpreter: loaded once per process, shared by all requests.

Each model is a `.tflite` file and a `.labels.json` file in the models
directory, written by `infra/build_model.py`. The interpreter is created on
first use and kept in a module global; XNNPACK runs one inference on all cores,
and a lock keeps concurrent requests from sharing its tensors at the same time.
No TensorFlow is imported here.
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
from typing import Any

import numpy as np

from common import errors, images
from common.config import settings

_models: dict[str, Model] = {}
_lock = threading.Lock()
WNID = re.compile(r"n\d{8}")


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


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
    # class name -> which of the 1000 classes it covers (computed once per name)
    masks: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def load(cls, name: str, models_dir: Path) -> Model:
        from ai_edge_litert.interpreter import Interpreter

        labels = json.loads((models_dir / f"{name}.labels.json").read_text())
        interpreter = Interpreter(model_path=str(models_dir / f"{name}.tflite"), num_threads=os.cpu_count() or 1)
        interpreter.allocate_tensors()
        names: dict[str, set[str]] = {}
        for wnid, lemmas in labels["lemmas"].items():
            names.setdefault(wnid, set()).add(wnid)
            for lemma in lemmas:
                names.setdefault(_key(lemma), set()).add(wnid)
        classes = labels["classes"]
        return cls(name=name, input_size=labels["input_size"], resize=labels["resize"],
                   labels=[c["label"] for c in classes], wnids=[c["wnid"] for c in classes],
                   ancestry=[frozenset(c["ancestors"]) for c in classes], names=names, interpreter=interpreter,
                   input_index=interpreter.get_input_details()[0]["index"],
                   output_index=interpreter.get_output_details()[0]["index"])

    # -- inference -------------------------------------------------------------------

    def prepare(self, data: bytes) -> np.ndarray:
        return images.prepare(data, self.input_size, self.resize)

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """Softmax over the 1000 classes for one HxWx3 uint8 crop."""
        batch = crop[np.newaxis].astype(np.float32)
        with self.lock:
            self.interpreter.set_tensor(self.input_index, batch)
            self.interpreter.invoke()
            logits = self.interpreter.get_tensor(self.output_index)[0].astype(np.float64)
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


def available() -> list[str]:
    directory = settings().models_dir
    return sorted(p.name[: -len(".tflite")] for p in directory.glob("*.tflite")
                  if (directory / p.name.replace(".tflite", ".labels.json")).exists())


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
