"""A linear classifier head on the backbone's features: weights W (F x C), bias b (C), labels.

The built-in ImageNet classifier is the backbone plus its 1000-class head; a
custom model is the backbone plus a head trained on the user's images. A head
is two small files: `<name>.head.npz` (W and b, float32, read with
`allow_pickle=False`, so a file can carry numbers and nothing that runs) and
`<name>.head.json` (labels and metadata, e.g. metrics). Loading one takes
milliseconds and is cached per process by the file's identity.
"""

from __future__ import annotations

import functools
import io
import json
import os
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.adapters.localfiles import write_atomic
from common.models import layout as model_layout
from common.models.classnames import normalise_class

FORMAT = "imageclassify-head/1"
MAX_NPZ_BYTES = 16 * 1024 * 1024  # the ImageNet head is 5 MB; a 200-class custom head 1 MB
MAX_JSON_BYTES = 4 * 1024 * 1024
CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, str], Head] = OrderedDict()
_cache_lock = threading.Lock()


class HeadError(ValueError):
    """A head file that is not what this module writes (truncated, foreign, inconsistent)."""


@dataclass(frozen=True)
class Head:
    weights: np.ndarray  # (features, classes) float32
    bias: np.ndarray  # (classes,) float32
    labels: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w, b = self.weights, self.bias
        if w.ndim != 2 or b.shape != (w.shape[1],) or len(self.labels) != w.shape[1]:
            raise HeadError(f"inconsistent head: W {w.shape}, b {b.shape}, {len(self.labels)} labels")
        if w.dtype != np.float32 or b.dtype != np.float32 or not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise HeadError("head weights must be finite float32")
        if len(self.index) != len(self.labels):
            raise HeadError("head labels must be distinct")

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """Class index by normalised label, built once: a sort job asks for every class of every image."""
        return {normalise_class(label): i for i, label in enumerate(self.labels)}

    @property
    def width(self) -> int:
        return int(self.weights.shape[0])

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(C,) or (N, C) float32 logits for (F,) or (N, F) features.

        One image goes through `einsum`, not BLAS: OpenBLAS's thread pool, woken for a 1280x1000
        product, then spins against LiteRT's XNNPACK threads and slows the next inference by 4 ms
        (measured on 2 cores); for a batch, BLAS is the fast path."""
        x = np.asarray(features, dtype=np.float32)
        if x.ndim == 1:
            return np.einsum("f,fc->c", x, self.weights) + self.bias
        return x @ self.weights + self.bias

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Softmax over the classes (float64, each row sums to 1) for (F,) or (N, F) features."""
        z = self.logits(features).astype(np.float64)
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=-1, keepdims=True)

    # -- files -------------------------------------------------------------------------

    def to_files(self) -> tuple[bytes, bytes]:
        """The `.head.npz` and `.head.json` contents (for a bucket or a folder)."""
        npz = io.BytesIO()
        np.savez(npz, weights=self.weights, bias=self.bias)
        sidecar = {**self.meta, "format": FORMAT, "labels": self.labels, "features": self.width,
                   "classes": len(self.labels)}
        return npz.getvalue(), json.dumps(sidecar, separators=(",", ":")).encode()

    @classmethod
    def from_files(cls, npz: bytes, sidecar: bytes) -> Head:
        if len(npz) > MAX_NPZ_BYTES or len(sidecar) > MAX_JSON_BYTES:
            raise HeadError("head file too large")
        try:
            meta = json.loads(sidecar)
            arrays = np.load(io.BytesIO(npz), allow_pickle=False)
            if not isinstance(arrays, np.lib.npyio.NpzFile) or sorted(arrays.files) != ["bias", "weights"]:
                raise HeadError("the .npz must hold exactly the arrays weights and bias")
            with arrays:
                weights, bias = arrays["weights"], arrays["bias"]
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            if isinstance(exc, HeadError):
                raise
            raise HeadError(f"unreadable head: {type(exc).__name__}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise HeadError("not a head sidecar")
        labels = meta.pop("labels", None)
        if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
            raise HeadError("head labels must be a list of strings")
        for key in ("format", "features", "classes"):
            meta.pop(key, None)
        return cls(weights=weights, bias=bias, labels=labels, meta=meta)

    def save(self, directory: Path, name: str) -> None:
        """Write both files atomically (temporary name, then rename), the sidecar last."""
        npz, sidecar = self.to_files()
        for path, data in zip(model_layout.head(directory, name), (npz, sidecar), strict=True):
            write_atomic(path, data)


def cached(key: str, version: str, load: Callable[[], Head]) -> Head:
    """The head stored under `key` at `version` (a file's mtime and size, an object's generation or ETag),
    loaded once per process; a new version replaces the old. Bounded, least recently used first out."""
    with _cache_lock:
        head = _cache.get((key, version))
        if head is not None:
            _cache.move_to_end((key, version))
            return head
    head = load()
    with _cache_lock:
        _drop(key)
        _cache[(key, version)] = head
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return head


def forget(key: str) -> None:
    """Drop a head from the cache (its model was deleted)."""
    with _cache_lock:
        _drop(key)


def _drop(key: str) -> None:
    """Every cached version of `key` (the caller holds the lock)."""
    for stale in [k for k in _cache if k[0] == key]:
        del _cache[stale]


def load_head(directory: Path, name: str) -> Head:
    """The head `name` in a local folder (the built-in heads live next to the models)."""
    npz_path, json_path = model_layout.head(directory, name)
    stats = [os.stat(npz_path), os.stat(json_path)]
    version = ":".join(f"{s.st_mtime_ns}-{s.st_size}" for s in stats)
    return cached(str(npz_path), version, lambda: Head.from_files(npz_path.read_bytes(), json_path.read_bytes()))
