"""A training set from a list of bucket object keys: immediate subfolders of the prefix are the classes.

`users/ann/pets/cat/2024/a.jpg` under the prefix `users/ann/pets/` is an image
of the class `cat` (images may sit anywhere below the class folder). Folder
names that normalise alike (`hot dog`, `hot_dog`, `HOT-DOG`) are one class.
Files that are not images by their extension are skipped and not charged, as
are files directly under the prefix and hidden files and folders. The limits
are checked here, before any token is reserved or image read, and every
refusal is a 400 whose message says what to change.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from common.adapters.storage.port import Storage
from common.core import errors
from common.models import files as model_files
from common.models.classnames import normalise_class
from common.records.records import ModelRecord

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff",
                              ".heic", ".heif", ".hif", ".avif"})  # the last four: what phones save
MIN_CLASSES, MAX_CLASSES = 2, 200
MIN_PER_CLASS = 5
MAX_IMAGES = 20_000
MAX_LABEL_CHARS = 100


@dataclass
class Dataset:
    """Classes in a stable order (by normalised name) and the object keys of each, sorted."""

    labels: list[str]
    keys: list[list[str]]
    skipped: list[str] = field(default_factory=list)  # not images, outside any class folder, or hidden

    @property
    def images(self) -> int:
        return sum(len(k) for k in self.keys)

    def items(self) -> list[tuple[str, int]]:
        """Every (key, class index), class by class."""
        return [(key, c) for c, keys in enumerate(self.keys) for key in keys]


def is_image_key(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def _check_label(folder: str) -> None:
    if len(folder) > MAX_LABEL_CHARS or any(unicodedata.category(ch).startswith("C") for ch in folder):
        shown = folder[:40].encode("unicode_escape").decode()
        raise errors.BadRequest(f"The class folder {shown!r} cannot be a label: use at most {MAX_LABEL_CHARS} "
                                "printable characters.", code="bad_class_name")
    if not normalise_class(folder):
        raise errors.BadRequest(f"The class folder {folder!r} has no name once spaces, '_' and '-' are "
                                "removed. Rename it.", code="bad_class_name")


def list_dataset(keys: Iterable[str], prefix: str, max_images: int = MAX_IMAGES) -> Dataset:
    """Group the keys under `prefix` into classes and check the limits (raises `errors.BadRequest`);
    `max_images` is the operator's limit (MODEL_MAX_IMAGES), at most 20,000 by default."""
    groups: dict[str, tuple[str, list[str]]] = {}
    skipped: list[str] = []
    count = 0
    for key in keys:
        if not key.startswith(prefix):
            continue
        parts = key[len(prefix):].split("/")
        if len(parts) < 2 or any(p.startswith(".") for p in parts) or not is_image_key(key):
            skipped.append(key)
            continue
        count += 1
        if count > max_images:  # stop reading a huge listing as soon as the answer is known
            raise errors.BadRequest(f"The folder holds more than {max_images:,} images; a model trains on at "
                                    f"most {max_images:,}. Use a smaller folder.", code="too_many_images")
        _check_label(parts[0])
        # the first spelling met (in sorted key order) is the label shown; the others merge into it
        label, members = groups.setdefault(normalise_class(parts[0]), (parts[0], []))
        if parts[0] < label:
            groups[normalise_class(parts[0])] = (parts[0], members)
        members.append(key)
    order = sorted(groups)
    dataset = Dataset([groups[k][0] for k in order], [sorted(groups[k][1]) for k in order], sorted(skipped))
    validate(dataset, prefix)
    return dataset


def validate(dataset: Dataset, prefix: str) -> None:
    if dataset.images == 0:
        raise errors.BadRequest(f"There are no images under {prefix!r}. Put each class's images in its own "
                                "folder, e.g. cat/1.jpg and dog/1.jpg.", code="empty_dataset")
    if len(dataset.labels) < MIN_CLASSES:
        raise errors.BadRequest(f"A model needs at least {MIN_CLASSES} classes (subfolders with images); found "
                                f"{len(dataset.labels)}.", code="too_few_classes")
    if len(dataset.labels) > MAX_CLASSES:
        raise errors.BadRequest(f"A model has at most {MAX_CLASSES} classes; found {len(dataset.labels)}. "
                                "Merge or remove some class folders.", code="too_many_classes")
    short = {label: len(keys) for label, keys in zip(dataset.labels, dataset.keys, strict=True)
             if len(keys) < MIN_PER_CLASS}
    if short:
        names = ", ".join(f"{label} ({n})" for label, n in sorted(short.items()))
        raise errors.BadRequest(f"Each class needs at least {MIN_PER_CLASS} images; too few in: {names}. Add "
                                "images to these folders or remove them.", code="class_too_small",
                                details={"classes": sorted(short)})


# -- the training set in the bucket (dataset.json beside the model's files) -----------------------------

def write_dataset(storage: Storage, record: ModelRecord, dataset: Dataset) -> None:
    body = {"labels": dataset.labels, "keys": dataset.keys, "seed": record.seed, "augment": record.augment,
            "chunk_size": record.chunk_size}
    storage.write(model_files.folder(record) + "dataset.json", json.dumps(body, separators=(",", ":")).encode(),
                  "application/json")


def read_dataset(storage: Storage, record: ModelRecord) -> Dataset:
    body = json.loads(storage.read(model_files.folder(record) + "dataset.json", model_files.MAX_DATASET_BYTES))
    return Dataset(list(body["labels"]), [list(keys) for keys in body["keys"]])


def chunk_items(dataset: Dataset, record: ModelRecord, chunk: int) -> list[tuple[int, str, int]]:
    """(item index, key, class index) of each image of a chunk: consecutive runs of the sorted item list."""
    items = dataset.items()
    start = chunk * record.chunk_size
    return [(start + i, key, c) for i, (key, c) in enumerate(items[start:start + record.chunk_size])]
