"""Where a custom model's files live in the bucket, and how they are written and read back.

Everything sits under `models/<owner>/<name>/<version>/`, outside every
user's space (no `/files` path reaches it), one folder per version so that a
late message of a deleted model can never touch the files of a new model of
the same name:

    dataset.json         the classes and the object keys of each (the listing the model was created from)
    chunks/<i>.npz       the features of chunk i (arrays only, read with allow_pickle=False)
    fit-<n>/head.npz     the head of fit run n (+ head.json, metrics.json, confusion.png)

The record names the fit folder that made the model ready; any other fit
folder is a redelivered fit's, deleted by that fit.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np

from common.adapters.storage.port import MODELS, Storage, list_all
from common.core import errors
from common.records.records import ModelRecord

ROOT = MODELS
MAX_DATASET_BYTES = 64 * 1024 * 1024  # 20,000 keys of at most 1 KB each, with room
MAX_CHUNK_BYTES = 64 * 1024 * 1024
MAX_METRICS_BYTES = 8 * 1024 * 1024
MAX_PNG_BYTES = 16 * 1024 * 1024


def folder(record: ModelRecord) -> str:
    return f"{ROOT}{record.owner}/{record.name}/{record.version}/"


def fit_folder(record: ModelRecord, run: int) -> str:
    return f"{folder(record)}fit-{run}/"


def chunk_path(record: ModelRecord, chunk: int) -> str:
    return f"{folder(record)}chunks/{chunk}.npz"


# -- features ------------------------------------------------------------------------------

def write_chunk(storage: Storage, record: ModelRecord, chunk: int, features: np.ndarray, items: list[int],
                views: list[int]) -> None:
    out = io.BytesIO()
    np.savez(out, features=np.asarray(features, np.float32), item=np.asarray(items, np.int64),
             view=np.asarray(views, np.int64))
    storage.write(chunk_path(record, chunk), out.getvalue())


def read_chunk(storage: Storage, record: ModelRecord, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (n, F) float32, item indices (n,), views (n,)) of one chunk; numbers only, never objects."""
    data = storage.read(chunk_path(record, chunk), MAX_CHUNK_BYTES)
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        return arrays["features"], arrays["item"], arrays["view"]


# -- the fitted model ----------------------------------------------------------------------

def write_fit(storage: Storage, prefix: str, head_files: tuple[bytes, bytes], metrics: dict[str, Any],
              confusion_png: bytes) -> None:
    """The head last but one and the metrics last: a reader that finds metrics.json finds everything."""
    storage.write(prefix + "confusion.png", confusion_png, "image/png")
    storage.write(prefix + "head.npz", head_files[0])
    storage.write(prefix + "head.json", head_files[1], "application/json")
    storage.write(prefix + "metrics.json", json.dumps(metrics, separators=(",", ":")).encode(), "application/json")


def read_head_files(storage: Storage, record: ModelRecord) -> tuple[bytes, bytes]:
    from common.models.heads import MAX_JSON_BYTES, MAX_NPZ_BYTES

    return (storage.read(record.artefacts + "head.npz", MAX_NPZ_BYTES),
            storage.read(record.artefacts + "head.json", MAX_JSON_BYTES))


def read_metrics(storage: Storage, record: ModelRecord) -> dict[str, Any]:
    metrics: dict[str, Any] = json.loads(storage.read(record.artefacts + "metrics.json", MAX_METRICS_BYTES))
    return metrics


def read_confusion(storage: Storage, record: ModelRecord) -> bytes:
    return storage.read(record.artefacts + "confusion.png", MAX_PNG_BYTES)


def delete_all(storage: Storage, prefix: str) -> int:
    """Delete every object under a prefix (one already gone is fine); how many were deleted."""
    deleted = 0
    for key in list(list_all(storage, prefix)):
        try:
            storage.delete(key)
            deleted += 1
        except errors.NotFound:
            pass
    return deleted
