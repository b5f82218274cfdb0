"""Animal-MNIST: 10,000 28x28 animal silhouettes in 10 classes, shipped inside the `animal-mnist` wheel (MIT).

A real, offline data set for training custom models in tests and benchmarks.
The package's own loader imports TensorFlow and downloads MNIST, so it is
never used: the two gzipped pickles are read here with an unpickler that
rebuilds numpy arrays and nothing else (a pickle can otherwise run any code).
The pickles were written by numpy 1.x, whose `numpy.core` is `numpy._core` now.
Install with `pip install --no-deps animal-mnist==0.4` (its declared
dependencies include TensorFlow, which the data does not need).
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

# Class index order of the data set's labels (the documented classes, alphabetical).
CLASSES = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
_ALLOWED = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are expected")
        return super().find_class(module, name)


def load_arrays(data: bytes) -> np.ndarray:
    """One pickled numpy array, refusing any other object."""
    array = _ArraysOnly(io.BytesIO(data)).load()
    if not isinstance(array, np.ndarray):
        raise pickle.UnpicklingError(f"expected a numpy array, got {type(array).__name__}")
    return array


def data_dir() -> Path:
    spec = importlib.util.find_spec("animal_mnist")  # locate only: importing it would import TensorFlow
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("The animal silhouettes come from the package animal-mnist: "
                         "pip install --no-deps animal-mnist==0.4")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "Animal_MNIST"


def load() -> tuple[np.ndarray, np.ndarray]:
    """(images (10000, 28, 28) uint8, labels (10000,) int64 indices into CLASSES)."""
    folder = data_dir()
    images = load_arrays(gzip.decompress((folder / "animal_data_version_3.gz").read_bytes()))
    labels = load_arrays(gzip.decompress((folder / "animal_label_version_3.gz").read_bytes()))
    return images.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.int64).ravel()


def png(pixels: np.ndarray, size: int = 112) -> bytes:
    """A grey image array as an RGB PNG, upscaled (nearest keeps the silhouette's edges crisp)."""
    img = Image.fromarray(pixels.astype(np.uint8), "L").resize((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    img.convert("RGB").save(out, "PNG")
    return out.getvalue()


def folder(images: np.ndarray, labels: np.ndarray, names: list[str], per_class: int, prefix: str,
           seed: int = 0) -> dict[str, bytes]:
    """`per_class` images of each class as `<prefix><class>/<n>.png`, picked with a seed."""
    rng = np.random.default_rng(seed)
    files: dict[str, bytes] = {}
    for c, name in enumerate(names):
        for n, i in enumerate(rng.choice(np.flatnonzero(labels == c), per_class, replace=False)):
            files[f"{prefix}{name}/{n:04d}.png"] = png(images[i])
    return files


def animal_folder(per_class: int = 50, prefix: str = "users/ann/animals/", seed: int = 0) -> dict[str, bytes]:
    images, labels = load()
    return folder(images, labels, CLASSES, per_class, prefix, seed)
