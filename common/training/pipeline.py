"""Tie the steps together: image bytes -> backbone features -> fitted head + test metrics.

The work splits in two so that it can fan out: `embed_images` turns any chunk
of images into feature rows (on any instance, with the views of training
images), and `train` runs once on all the rows, by split. `run` does both in
one process, for small sets and for the tests. Images that cannot be decoded
are skipped and reported (the caller refunds them), never fatal.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.core import errors, parallel
from common.models.backbone import DEFAULT, Backbone
from common.models.classifier import Source, read
from common.models.heads import Head
from common.training import augment as aug
from common.training.dataset import Dataset
from common.training.metrics import evaluate
from common.training.split import Split, stratified_split
from common.training.variants import fit_best

MAX_TRAIN_ROWS = 50_000  # 256 MB of float32 features (twice that while fitting); beyond it, rows are sampled
SPLITS = ("train", "validation", "test")


@dataclass
class Embedded:
    """Feature rows: one per image, plus `views` more per training image, with where each came from."""

    keys: list[str] = field(default_factory=list)
    views: list[int] = field(default_factory=list)  # 0 = the image itself, 1.. = augmented views
    features: list[np.ndarray] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)  # {key, code, message}

    def matrix(self) -> np.ndarray:
        return np.stack(self.features) if self.features else np.empty((0, 0), dtype=np.float32)


def embed_images(backbone: Backbone, images: Iterable[tuple[str, Source]], views: int | Callable[[str], int] = 0,
                 seed: int = 0) -> Embedded:
    """Embed (key, image bytes or a function that reads them) pairs; each image also as `views` augmented
    views (seeded per key; `views` may be a function of the key). Images are read and decoded while others
    embed, crops spread over the backbone's pool: the same rows, in the same order, as one at a time. An image
    that cannot be read or decoded is skipped and reported in `failed`."""
    out = Embedded()

    def crops(pair: tuple[str, Source]) -> tuple[str, list[np.ndarray] | errors.AppError]:
        key, source = pair
        try:
            crop = backbone.prepare(read(source))
        except (*errors.BAD_IMAGE, errors.NotFound) as exc:
            return key, exc
        extra = views(key) if callable(views) else views
        return key, [crop, *aug.augment(crop, extra, aug.image_seed(seed, key))] if extra else [crop]

    def rows() -> Iterator[tuple[str, int, np.ndarray]]:
        for key, made in parallel.ordered_map(crops, images, backbone.pool.size):
            if isinstance(made, errors.AppError):
                out.failed.append({"key": key, "code": made.code, "message": made.message})
                continue
            yield from ((key, v, c) for v, c in enumerate(made))

    def embed(row: tuple[str, int, np.ndarray]) -> tuple[str, int, np.ndarray]:
        return row[0], row[1], backbone.embed(row[2])

    for key, view, features in parallel.ordered_map(embed, rows(), backbone.pool.size):
        out.keys.append(key)
        out.views.append(view)
        out.features.append(features)
    return out


def train(features_by_split: Mapping[str, tuple[np.ndarray, np.ndarray]], labels: Sequence[str], seed: int = 0,
          meta: Mapping[str, Any] | None = None, max_seconds: float = 120.0,
          backbone: str = DEFAULT, views: np.ndarray | None = None) -> tuple[Head, dict[str, Any]]:
    """Fit the head on the train rows (L2 and which views to use chosen on validation) and score it on test.

    `features_by_split` maps train/validation/test to (X (n, F) float32, y (n,) class indices); `views` gives
    the view number of each train row (0 = the image itself; all 0 when None); `backbone` is the built-in
    model whose features they are, recorded in the head so that it is served on the same one."""
    x_train, y_train = features_by_split["train"]
    x_val, y_val = features_by_split["validation"]
    x_test, y_test = features_by_split["test"]
    views = np.zeros(len(y_train), np.int64) if views is None else np.asarray(views, np.int64)
    if len(x_train) > MAX_TRAIN_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(x_train), MAX_TRAIN_ROWS, replace=False))
        x_train, y_train, views = x_train[keep], y_train[keep], views[keep]
    fitted, chosen = fit_best(x_train, y_train, views, x_val, y_val, len(labels), max_seconds)
    head = Head(fitted.weights, fitted.bias, list(labels),
                {"kind": "custom", "backbone": backbone, **(meta or {})})
    metrics = evaluate(y_test, head.probabilities(x_test) if len(x_test) else np.empty((0, len(labels))), labels)
    metrics["fit"] = {"l2": fitted.l2, "iterations": fitted.iterations, "seconds": fitted.seconds,
                      "validation_loss": round(fitted.validation_loss, 6), "train_rows": int(len(x_train))}
    metrics["views"] = chosen
    return head, metrics


def _rows(embedded: Embedded, split_of: Mapping[str, str]) -> dict[str, list[int]]:
    """Row numbers of each split part; views of held-out images (there should be none) are dropped."""
    rows: dict[str, list[int]] = {name: [] for name in SPLITS}
    for i, (key, view) in enumerate(zip(embedded.keys, embedded.views, strict=True)):
        part = split_of[key]
        if view == 0 or part == "train":
            rows[part].append(i)
    return rows


def by_split(embedded: Embedded, classes: Mapping[str, int], split_of: Mapping[str, str]
             ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Arrange rows into train/validation/test (the order `train_views` gives the train rows' views in)."""
    matrix = embedded.matrix()
    width = matrix.shape[1] if matrix.size else 0
    return {name: (matrix[idx] if idx else np.empty((0, width), np.float32),
                   np.array([classes[embedded.keys[i]] for i in idx], dtype=np.int64))
            for name, idx in _rows(embedded, split_of).items()}


def train_views(embedded: Embedded, split_of: Mapping[str, str]) -> np.ndarray:
    """The view number of each train row of `by_split`, in its order."""
    return np.array([embedded.views[i] for i in _rows(embedded, split_of)["train"]], dtype=np.int64)


def split_of_keys(dataset: Dataset, seed: int = 0) -> tuple[Split, dict[str, str]]:
    """The seeded stratified split of a dataset, and which part each key is in."""
    items = dataset.items()
    split = stratified_split([c for _, c in items], seed)
    where = {items[i][0]: name for name in SPLITS for i in getattr(split, name)}
    return split, where


def run(dataset: Dataset, read: Callable[[str], bytes], backbone: Backbone, views: int = aug.DEFAULT_VIEWS,
        seed: int = 0) -> tuple[Head, dict[str, Any], Embedded]:
    """Everything in this process: split, embed (views for training images only), fit, evaluate."""
    started = time.perf_counter()
    split, where = split_of_keys(dataset, seed)
    classes = dict(dataset.items())
    embedded = embed_images(backbone, ((key, read(key)) for key, _ in dataset.items()),
                            lambda key: views if where[key] == "train" else 0, seed)
    embed_seconds = time.perf_counter() - started
    head, metrics = train(by_split(embedded, classes, where), dataset.labels, seed, backbone=backbone.model,
                          views=train_views(embedded, where))
    metrics["split"] = split.sizes()
    metrics["timing"] = {"embed_seconds": round(embed_seconds, 3), "rows": len(embedded.keys)}
    return head, metrics, embedded
