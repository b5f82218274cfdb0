"""The queue worker's training work: embed one chunk of a model's images, or fit its head, exactly once in effect.

Two kinds of message, both signed and naming the model's version:

- `{"kind": "embed", owner, name, version, chunk}`: read and embed the chunk's
  images (training images also as augmented views), save the features, then
  record the chunk. The commit that records the last chunk tells exactly one
  caller to publish the fit.
- `{"kind": "fit", owner, name, version}`: fit the head on every chunk's
  features, write the head, metrics and confusion matrix under a folder of its
  own, then mark the model ready, only while it is still training. A fit that
  died is delivered again and simply runs again; a fit that lost the race
  deletes its own folder.

Files come first and records after, so a crash between the two is mended by the
redelivery; a model deleted meanwhile is noticed by the record step, which then
deletes what it wrote.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from common.adapters.deps import Deps
from common.core import signing
from common.files import spaces
from common.models import files as model_files
from common.records import messages
from common.records.records import ModelRecord
from common.training import dataset as training_set

log = logging.getLogger("imageclassify.training")


def _model(message: Any, deps: Deps) -> ModelRecord | None:
    """The model a training message names, when we signed it and the model still exists in that version."""
    if not isinstance(message, dict) or not signing.verified(message) \
            or message.get("kind") not in messages.TRAINING_KINDS \
            or not all(isinstance(message.get(f), str) for f in ("owner", "name", "version")):
        log.error("dropping a training message that is malformed or not signed by us")
        return None
    record = deps.store.get_model_record(message["owner"], message["name"])
    if record is None or record.version != message["version"]:
        log.warning("dropping a message for a model that is gone")
        return None
    return record


def handle(message: Any, deps: Deps) -> bool:
    """Do what a training message asks; False when there was nothing to do."""
    record = _model(message, deps)
    if record is None:
        return False
    if message["kind"] == "fit":
        return fit(record, deps)
    chunk = message.get("chunk")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 0 <= chunk < record.chunks:
        log.error("dropping an embed message with a bad chunk number")
        return False
    return embed(record, chunk, deps)


def _publish_fit(record: ModelRecord, deps: Deps) -> None:
    deps.queue.publish([messages.training(record, "fit")])


def embed(record: ModelRecord, chunk: int, deps: Deps) -> bool:
    from common.models.backbone import get_backbone
    from common.training import pipeline

    store, storage = deps.store, deps.storage
    if store.chunk_recorded(record, chunk) or record.status not in ("queued", "embedding"):
        if record.status == "training" and record.fit_chunk == chunk:
            _publish_fit(record, deps)  # the fit may have been lost between the last chunk's commit and its publication
        return False
    dataset = training_set.read_dataset(storage, record)
    _, where = pipeline.split_of_keys(dataset, record.seed)
    backbone, limit = get_backbone(record.backbone), deps.settings.storage.image_max_bytes
    items = training_set.chunk_items(dataset, record, chunk)
    # each image by its path in the dataset: augmentations are seeded by it, so the same folder trains the same
    # model whoever owns it
    named = {key.removeprefix(spaces.space(record.owner)).removeprefix(record.source): (index, key, label)
             for index, key, label in items}

    def reader(key: str) -> Callable[[], bytes]:
        return lambda: storage.read(key, limit)

    # one pass over the chunk: the next images are read and decoded while others embed, on every core
    part = pipeline.embed_images(backbone, [(name, reader(key)) for name, (_, key, _) in named.items()],
                                 lambda name: record.augment if where[named[name][1]] == "train" else 0, record.seed)
    failed = [named[f["key"]][1] for f in part.failed]
    decoded = [0] * len(record.labels)
    for name, view in zip(part.keys, part.views, strict=True):
        decoded[named[name][2]] += int(view == 0)
    features = part.matrix() if part.features else np.empty((0, backbone.width), np.float32)
    model_files.write_chunk(storage, record, chunk, features, [named[name][0] for name in part.keys], part.views)
    outcome = store.record_chunk(record.owner, record.name, record.version, chunk, decoded, failed)
    if outcome == "gone":
        model_files.delete_all(storage, model_files.chunk_path(record, chunk))
    elif outcome == "fit":
        _publish_fit(record, deps)
    return outcome in ("recorded", "fit", "failed")


def _features(record: ModelRecord, deps: Deps) -> tuple[Any, dict[str, int], dict[str, str]]:
    """Every chunk's rows as one `Embedded`, with each key's class and split part."""
    from common.training import pipeline

    storage = deps.storage
    dataset = training_set.read_dataset(storage, record)
    items = dataset.items()
    embedded = pipeline.Embedded()
    for chunk in range(record.chunks):
        features, item, view = model_files.read_chunk(storage, record, chunk)
        embedded.keys += [items[int(i)][0] for i in item]
        embedded.views += [int(v) for v in view]
        embedded.features += list(features)
    _, where = pipeline.split_of_keys(dataset, record.seed)
    return embedded, dict(items), where


def fit(record: ModelRecord, deps: Deps) -> bool:
    from common.training import pipeline
    from common.training.confusion_png import render

    store, storage = deps.store, deps.storage
    started = store.start_fit(record.owner, record.name, record.version)
    if started is None:
        return False
    embedded, classes, where = _features(started, deps)
    rows = pipeline.by_split(embedded, classes, where)
    trained = np.bincount(rows["train"][1], minlength=len(started.labels))
    if not trained.all():
        missing = [label for label, n in zip(started.labels, trained, strict=True) if n == 0]
        store.fail_model(started.owner, started.name, started.version,
                         "No training image of " + ", ".join(missing[:10]) + " could be read, so the model cannot "
                         "learn it. Add readable images to those folders; every token was refunded.")
        return True
    head, metrics = pipeline.train(rows, started.labels, started.seed,
                                   {"owner": started.owner, "name": started.name, "version": started.version},
                                   max_seconds=deps.settings.models.model_fit_seconds, backbone=started.backbone,
                                   views=pipeline.train_views(embedded, where))
    metrics["split"] = started.split
    matrix = metrics["confusion_matrix"]
    prefix = model_files.fit_folder(started, started.fit_runs)
    model_files.write_fit(storage, prefix, head.to_files(), metrics, render(matrix["labels"], matrix["matrix"]))
    outcome = store.finish_fit(started.owner, started.name, started.version, prefix, metrics["accuracy"],
                               metrics["macro_f1"])
    if outcome != "ready":
        model_files.delete_all(storage, prefix)
    return outcome == "ready"


def handle_dead_letter(message: Any, deps: Deps) -> bool:
    """A training message that exhausted its deliveries: the run fails and every token is refunded."""
    record = _model(message, deps)
    if record is None:
        return False
    return deps.store.fail_model(record.owner, record.name, record.version,
                                  "Training could not finish: a step failed after several attempts. Every token "
                                  "was refunded; try again later.")
