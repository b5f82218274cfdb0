"""What a model's class names mean, apart from how it infers: a POST /jobs checks names without an interpreter.

A built-in model's vocabulary is its labels file (ImageNet labels, their WordNet
ids, ancestors and lemmas): a class name such as "dog" stands for every
ImageNet class under it. A custom model's vocabulary is its head's labels: a
class name is one of them. Both answer the same questions (`resolve`, `top`,
`class_scores`), so the predictor (`common.models.classifier`) needs no mode.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from common.core import errors
from common.core.config import settings
from common.core.lazy import PerKey
from common.models import layout as model_layout
from common.models.classnames import normalise_class

WNID = re.compile(r"n\d{8}")


class Vocabulary(Protocol):
    labels: list[str]

    def resolve(self, name: str) -> object: ...

    def class_scores(self, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]: ...

    def top(self, probs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[dict[str, Any]]: ...


def _top(labels: list[str], probs: np.ndarray, top_k: int, min_score: float,
         wnids: list[str] | None = None) -> list[dict[str, Any]]:
    order = np.argsort(probs)[::-1][:min(top_k, len(labels))]
    return [{"label": labels[i], "score": round(float(probs[i]), 5), "class_id": int(i),
             **({"wnid": wnids[i]} if wnids is not None else {})} for i in order if probs[i] >= min_score]


@dataclass
class WordNet:
    """A built-in model's ImageNet classes and the WordNet names that cover them."""

    name: str
    input_size: int
    resize: int
    labels: list[str]
    wnids: list[str]
    ancestry: list[frozenset[str]]  # class index -> its ancestors' WordNet ids (its own included)
    names: dict[str, set[str]]  # normalised lemma or WordNet id -> the WordNet ids it names
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # class name -> the classes it covers

    @classmethod
    def from_labels(cls, name: str, labels: dict[str, Any]) -> WordNet:
        names: dict[str, set[str]] = {}
        for wnid, lemmas in labels["lemmas"].items():
            names.setdefault(wnid, set()).add(wnid)
            for lemma in lemmas:
                names.setdefault(normalise_class(lemma), set()).add(wnid)
        classes = labels["classes"]
        return cls(name=name, input_size=int(labels["input_size"]), resize=int(labels["resize"]),
                   labels=[c["label"] for c in classes], wnids=[c["wnid"] for c in classes],
                   ancestry=[frozenset(c["ancestors"]) for c in classes], names=names)

    def resolve(self, name: str) -> set[str]:
        """The WordNet ids a user's class name stands for; an unknown name is a 400 with near matches."""
        key = name.strip() if WNID.fullmatch(name.strip()) else normalise_class(name)
        if key in self.names:
            return self.names[key]
        near = difflib.get_close_matches(key, [k for k in self.names if not WNID.fullmatch(k)], n=5, cutoff=0.75)
        hint = (f" Did you mean: {', '.join(near)}?" if near
                else " Use an ImageNet label or a WordNet category such as dog, vehicle or food.")
        raise errors.BadRequest(f"Unknown class {name!r}.{hint}", code="unknown_class")

    def mask(self, name: str) -> np.ndarray:
        mask = self.masks.get(name)
        if mask is None:
            wanted = self.resolve(name)
            mask = np.fromiter((not wanted.isdisjoint(a) for a in self.ancestry), dtype=bool, count=len(self.ancestry))
            self.masks[name] = mask
        return mask

    def class_scores(self, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
        """Per requested class, the summed probability of the ImageNet classes under it in WordNet."""
        return {name: float(probs[self.mask(name)].sum()) for name in classes}

    def top(self, probs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[dict[str, Any]]:
        return _top(self.labels, probs, top_k, min_score, self.wnids)


@dataclass
class Labels:
    """A custom model's classes: exactly its head's labels."""

    model: str
    labels: list[str]
    index: dict[str, int]  # normalised label -> class index

    def resolve(self, name: str) -> int:
        """The class index a user's class name stands for; a name that is not one of the labels is a 400."""
        found = self.index.get(normalise_class(name))
        if found is not None:
            return found
        shown = ", ".join(self.labels[:20]) + (" ..." if len(self.labels) > 20 else "")
        raise errors.BadRequest(f"Unknown class {name[:80]!r}: the model {self.model!r} knows {shown}.",
                                code="unknown_class")

    def class_scores(self, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
        return {name: float(probs[self.resolve(name)]) for name in classes}

    def top(self, probs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[dict[str, Any]]:
        return _top(self.labels, probs, top_k, min_score)


def available() -> list[str]:
    """Built-in models with a labels file and either a whole classifier or the backbone and a head (a bundle
    carries only the latter: the backbone is shared by every head)."""
    directory = settings().models.models_dir
    names = (p.name[: -len(".labels.json")] for p in directory.glob("*.labels.json"))
    return sorted(n for n in names if model_layout.servable(directory, n))


def check_builtin(name: str) -> None:
    """A 404 `unknown_model` unless `name` is a built-in model present here."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name) or name not in available():
        have = ", ".join(available()) or "none (build one with `nox -s model`)"
        raise errors.NotFound(f"There is no model named {name!r}. Available: {have}.", code="unknown_model")


def _read_builtin(name: str) -> WordNet:
    check_builtin(name)
    path = model_layout.labels(settings().models.models_dir, name)
    return WordNet.from_labels(name, json.loads(path.read_text()))


_builtins: PerKey[str, WordNet] = PerKey(_read_builtin)


def builtin(name: str | None = None) -> WordNet:
    """The vocabulary of a built-in model (None: the default), read once from its labels file; no interpreter."""
    return _builtins.get(name or settings().models.default_model)
