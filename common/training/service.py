"""Custom models as the API sees them: create (validate, charge, fan out), list, describe, delete.

Creating a model lists the training folder of the caller's space and checks
every rule before a token is taken; then one commit stores the model and
charges one token per image, the listing is saved beside the model's files,
and one queue message per chunk of images goes to the worker
(`common.training.worker`), through the same queue and worker as sort jobs.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from common.accounts import webhooks
from common.adapters.deps import Deps
from common.adapters.storage.port import list_all
from common.core import bodies, errors
from common.files import spaces
from common.models import files as model_files
from common.models.registry import NAME, builtin_names
from common.records import messages
from common.records.models import unknown_model
from common.records.records import Account, ModelRecord
from common.training import dataset, split
from common.training.bodies import ModelRequest

log = logging.getLogger("imageclassify.custom_models")
SEED = 0
MAX_LISTED = 100_000  # objects read from a training folder (images or not) before giving up


def check_name(name: str, default_model: str) -> str:
    """A name of the caller's own (its form is checked by `ModelRequest`): not a built-in's."""
    if name in builtin_names() or name == default_model:
        raise errors.BadRequest(f"{name!r} is the name of a built-in model. Choose another name.",
                                code="invalid_name")
    return name


def check_backbone(name: Any, deps: Deps) -> str:
    """The built-in model whose backbone a custom model is trained on (default Lite0): one present here, with its
    features file, or a 400 that lists the choices."""
    from common.models import layout as model_layout
    from common.models.backbone import DEFAULT

    if name is None:
        return DEFAULT
    folder = deps.settings.models.models_dir
    choices = [n for n in builtin_names() if model_layout.features(folder, n).is_file()]
    if not isinstance(name, str) or name not in choices:
        raise errors.BadRequest(f"backbone must be one of {', '.join(choices)} (default {DEFAULT}).",
                                code="invalid_backbone")
    return name


def _bounded(keys: Iterable[str]) -> Iterator[str]:
    for n, key in enumerate(keys):
        if n >= MAX_LISTED:
            raise errors.BadRequest(f"The folder holds more than {MAX_LISTED:,} files. Use a folder with only the "
                                    "training images.", code="too_many_files")
        yield key


def create(account: Account, body: Mapping[str, Any], deps: Deps) -> ModelRecord:
    request = bodies.convert(ModelRequest, body)
    name = check_name(request.name, deps.settings.models.default_model)
    source = spaces.clean_path(request.source, folder=True, what="source")
    if not source:
        raise errors.BadRequest("source must be a folder of your space whose subfolders are the classes, e.g. "
                                "\"datasets/pets/\".", code="invalid_source")
    views = request.views
    webhook = webhooks.check_url(request.webhook, deps.settings.fetch.fetch_allow_loopback)
    backbone = check_backbone(request.backbone, deps)
    store, storage, s = deps.store, deps.storage, deps.settings
    if store.get_model_record(account.username, name) is not None:  # the commit checks again; this saves a listing
        raise errors.Conflict(f"You already have a model named {name!r}. Choose another name, or "
                              f"DELETE /models/{name} first.", code="model_exists")
    prefix = spaces.space(account.username) + source
    found = dataset.list_dataset(_bounded(list_all(storage, prefix)), prefix, min(s.models.model_max_images,
                                                                                 dataset.MAX_IMAGES))
    sizes = split.stratified_split([c for _, c in found.items()], SEED).sizes()
    version, chunk_size = uuid.uuid4().hex, s.models.model_chunk_size
    record = ModelRecord(owner=account.username, name=name, version=version, labels=found.labels,
                         images=found.images, chunk_size=max(1, chunk_size),
                         chunks=math.ceil(found.images / max(1, chunk_size)), augment=views, source=source,
                         split=sizes, seed=SEED, decoded=[0] * len(found.labels),
                         backbone=backbone, spend_id=f"{account.username}:model:{version}", webhook=webhook)
    store.create_model(record, key_id=account.key_id)
    try:
        dataset.write_dataset(storage, record, found)
        deps.queue.publish([messages.training(record, "embed", chunk=i) for i in range(record.chunks)])
    except Exception as exc:
        log.exception("queueing model %s failed", record.reference)
        store.fail_model(record.owner, name, version, "The training could not be queued; every token was refunded.")
        raise errors.retry_later("The training could not be queued; no tokens were spent. Retry in a moment.",
                                 exc) from exc
    record.status = "queued"
    return record


def get(account: Account, name: str, deps: Deps) -> ModelRecord:
    """The caller's model; another user's answers 404 exactly like a missing one."""
    record = deps.store.get_model_record(account.username, name) if NAME.fullmatch(name) else None
    if record is None:
        raise unknown_model(name)
    return record


def describe(record: ModelRecord, deps: Deps, metrics: bool = True) -> dict[str, Any]:
    done = record.images if record.status == "ready" else record.done
    body: dict[str, Any] = {
        "name": record.name, "status": record.status, "classes": record.labels, "images": record.images,
        "failed": record.failed, "source": record.source, "augment": record.augment, "backbone": record.backbone,
        "progress": {"done": done, "total": record.images,
                     "percentage": round(100.0 * done / record.images, 1) if record.images else 100.0},
        "split": record.split, "created": record.created, "updated": record.updated,
    }
    if record.error:
        body["error"] = record.error
    if record.webhook:
        body["webhook"] = record.webhook
    if record.status == "ready":
        body["accuracy"], body["macro_f1"] = record.accuracy, record.macro_f1
        if metrics:
            body["metrics"] = model_files.read_metrics(deps.storage, record)
    return body


def listing(account: Account, deps: Deps) -> dict[str, Any]:
    own = [describe(r, deps, metrics=False) for r in deps.store.models_of(account.username)]
    default = deps.settings.models.default_model
    builtins = [{"name": n, "builtin": True, "status": "ready", "default": n == default} for n in builtin_names()]
    return {"models": builtins + [{**m, "builtin": False} for m in own]}


def confusion_png(account: Account, name: str, deps: Deps) -> bytes:
    record = get(account, name, deps)
    if record.status != "ready":
        raise errors.Conflict(f"The model {name!r} is not ready yet (status {record.status}); its confusion matrix "
                              "is drawn when training ends.", code="model_not_ready")
    return model_files.read_confusion(deps.storage, record)


def delete(account: Account, name: str, deps: Deps) -> None:
    """Remove the model, its files and its cached head; a model not ready yet is refunded in full. Messages
    still queued for it find no model (or another version) and change nothing."""
    from common.models import heads

    if not NAME.fullmatch(name):
        raise unknown_model(name)
    record = deps.store.delete_model(account.username, name)
    model_files.delete_all(deps.storage, model_files.folder(record))
    heads.forget(record.key)  # as common.models.registry cached it
