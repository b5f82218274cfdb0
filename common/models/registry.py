"""Which model a request means: the caller's own custom models first, then the built-ins.

A custom model serves through the interface of a built-in one (`predict`,
`top`, `resolve`, `class_scores`, `name`), so classify and the sort worker use
either without knowing which it is. Its head is read from the bucket once per
process and cached under the model's owner, name and version (`common.models.heads`),
so a model deleted and created again never serves the old head; the record is
read on every use, so a deleted model stops serving at once everywhere.

- another user's model answers 404 `unknown_model`, exactly like a missing one;
- a model not ready yet answers 409 `model_not_ready`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from common.core import errors, metrics
from common.models.classnames import normalise_class
from common.records.records import ModelRecord

if TYPE_CHECKING:
    from common.models.backbone import Backbone
    from common.models.heads import Head
    from common.models.model import Model, Source

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{1,39}")
REFERENCE = re.compile(r"(?P<owner>[A-Za-z0-9_.-]{1,64})/(?P<name>[a-z0-9][a-z0-9_-]{1,39})"
                       r"@(?P<version>[0-9a-f]{1,64})")


@dataclass
class CustomModel:
    name: str
    record: ModelRecord
    head: Head
    backbone: Backbone

    @property
    def labels(self) -> list[str]:
        return self.head.labels

    def predict(self, data: bytes) -> np.ndarray:
        """Class probabilities for image file bytes (decode, crop, embed, head)."""
        return self.head.probabilities(self.backbone.embed(self.backbone.prepare(data)))

    def predict_many(self, sources: Sequence[Source]) -> list[np.ndarray | errors.AppError]:
        """`predict` for each image (its bytes, or a function that reads them), spread over the backbone's pool;
        an image that fails has its `AppError` in its place."""
        from common.core import parallel
        from common.models.model import read

        return parallel.outcomes(lambda source: self.predict(read(source)), sources, self.backbone.pool.size)

    def top(self, probs: np.ndarray, top_k: int = 5, min_score: float = 0.0) -> list[dict[str, Any]]:
        order = np.argsort(probs)[::-1][:min(top_k, len(self.labels))]
        return [{"label": self.labels[i], "score": round(float(probs[i]), 5), "class_id": int(i)}
                for i in order if probs[i] >= min_score]

    def resolve(self, name: str) -> int:
        """The class index a user's class name stands for; a name that is not one of the labels is a 400."""
        found = self.head.index.get(normalise_class(name))
        if found is not None:
            return found
        shown = ", ".join(self.labels[:20]) + (" ..." if len(self.labels) > 20 else "")
        raise errors.BadRequest(f"Unknown class {name[:80]!r}: the model {self.name!r} knows {shown}.",
                                code="unknown_class")

    def class_scores(self, probs: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
        return {name: float(probs[self.resolve(name)]) for name in classes}


def _custom(record: ModelRecord) -> CustomModel:
    from common.adapters.backends import get_storage
    from common.models import files as model_files
    from common.models import heads
    from common.models.backbone import get_backbone

    if record.status != "ready":
        raise errors.Conflict(f"The model {record.name!r} is not ready yet (status {record.status}). Poll "
                              f"GET /models/{record.name} until its status is ready.", code="model_not_ready")

    def load() -> Head:
        return heads.Head.from_files(*model_files.read_head_files(get_storage(), record))

    head = heads.cached(record.key, f"{record.version}:{record.artefacts}", load)
    return CustomModel(record.name, record, head, get_backbone())


def resolve(owner: str, name: str | None) -> Model | CustomModel:
    """The model `name` as `owner` sees it: their own, else a built-in (None: the default built-in)."""
    from common.adapters.backends import get_store

    if name is not None and NAME.fullmatch(name):
        record = get_store().get_model_record(owner, name)
        if record is not None:
            return _custom(record)
    return _builtin(name)


def _builtin(name: str | None) -> Model:
    """A built-in model (None: the default); its first load in this process is timed (`model_load_seconds`)."""
    from common.core.config import settings
    from common.models.model import get_model

    return metrics.first_use(name or settings().models.default_model, lambda: get_model(name))


def reference(model: Model | CustomModel) -> str:
    """What a job records to find the same model again: a built-in's name, or owner/name@version."""
    return model.record.reference if isinstance(model, CustomModel) else model.name


def by_reference(ref: str | None) -> Model | CustomModel:
    """The model a job recorded; a custom model deleted (or replaced) since is a 404 `unknown_model`."""
    from common.adapters.backends import get_store

    match = REFERENCE.fullmatch(ref or "")
    if match is None:
        return _builtin(ref)
    record = get_store().get_model_record(match["owner"], match["name"])
    if record is None or record.version != match["version"]:
        raise errors.NotFound(f"The model {match['name']!r} was deleted.", code="unknown_model")
    return _custom(record)


def builtin_names() -> list[str]:
    from common.models.model import available

    return available()
