"""Which model a request means: the caller's own custom models first, then the built-ins.

A custom model is a `Model` too (`common.models.classifier.Classifier`): the
backbone it was trained on plus its head, so classify and the sort worker use
either without knowing which it is. Its head is read from the bucket once per
process and cached under the model's owner, name and version (`common.models.heads`),
so a model deleted and created again never serves the old head; the record is
read on every use, so a deleted model stops serving at once everywhere.

- another user's model answers 404 `unknown_model`, exactly like a missing one;
- a model not ready yet answers 409 `model_not_ready`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.adapters.deps import Deps
from common.core import errors, metrics
from common.models.classifier import Classifier
from common.models.layout import MODEL_NAME
from common.models.model import Model
from common.models.vocabulary import Labels, Vocabulary
from common.records.records import ModelRecord

if TYPE_CHECKING:
    from common.models.heads import Head

NAME = MODEL_NAME
REFERENCE = re.compile(rf"(?P<owner>[A-Za-z0-9_.-]{{1,64}})/(?P<name>{MODEL_NAME.pattern})"
                       r"@(?P<version>[0-9a-f]{1,64})")


@dataclass
class CustomModel(Model):
    """A caller's model: a built-in backbone and the head trained on their images, with its record."""

    record: ModelRecord = field(kw_only=True)


def _custom(record: ModelRecord, deps: Deps) -> CustomModel:
    from common.models.backbone import get_backbone

    head = _head(record, deps)
    backbone = get_backbone(backbone_of(head))
    return CustomModel(name=record.name, vocabulary=Labels(record.name, head.labels, head.index),
                       input_size=backbone.input_size, resize=backbone.resize, backbone=backbone, head=head,
                       record=record)


def backbone_of(head: Head) -> str:
    """The built-in model whose backbone a custom head was trained on (heads from before the choice: Lite0)."""
    from common.models.backbone import DEFAULT

    return str(head.meta.get("backbone") or DEFAULT).removesuffix("_features")


def _head(record: ModelRecord, deps: Deps) -> Head:
    """A ready custom model's head, read from the bucket once per process; not ready is a 409."""
    from common.models import files as model_files
    from common.models import heads

    if record.status != "ready":
        raise errors.Conflict(f"The model {record.name!r} is not ready yet (status {record.status}). Poll "
                              f"GET /models/{record.name} until its status is ready.", code="model_not_ready")

    def load() -> Head:
        return heads.Head.from_files(*model_files.read_head_files(deps.storage, record))

    return heads.cached(record.key, f"{record.version}:{record.artefacts}", load)


def vocabulary_of(owner: str, name: str | None, deps: Deps) -> tuple[str, Vocabulary]:
    """What a job records to find the model `name` again (see `reference`) and its class names, as `owner` sees
    it; the same 404 and 409 as `resolve`, and no interpreter is started (a POST /jobs only checks names)."""
    from common.models import vocabulary

    if name is not None and NAME.fullmatch(name):
        record = deps.store.get_model_record(owner, name)
        if record is not None:
            head = _head(record, deps)
            return record.reference, Labels(record.name, head.labels, head.index)
    words = vocabulary.builtin(name)
    return words.name, words


def resolve(owner: str, name: str | None, deps: Deps) -> Classifier:
    """The model `name` as `owner` sees it: their own, else a built-in (None: the default built-in)."""
    if name is not None and NAME.fullmatch(name):
        record = deps.store.get_model_record(owner, name)
        if record is not None:
            return _custom(record, deps)
    return _builtin(name)


def _builtin(name: str | None) -> Model:
    """A built-in model (None: the default); its first load in this process is timed (`model_load_seconds`)."""
    from common.core.config import settings
    from common.models.model import get_model

    return metrics.first_use(name or settings().models.default_model, lambda: get_model(name))


def reference(model: Classifier) -> str:
    """What a job records to find the same model again: a built-in's name, or owner/name@version."""
    return model.record.reference if isinstance(model, CustomModel) else model.name


def by_reference(ref: str | None, deps: Deps) -> Classifier:
    """The model a job recorded; a custom model deleted (or replaced) since is a 404 `unknown_model`."""
    match = REFERENCE.fullmatch(ref or "")
    if match is None:
        return _builtin(ref)
    record = deps.store.get_model_record(match["owner"], match["name"])
    if record is None or record.version != match["version"]:
        raise errors.NotFound(f"The model {match['name']!r} was deleted.", code="unknown_model")
    return _custom(record, deps)


def builtin_names() -> list[str]:
    from common.models.model import available

    return available()
