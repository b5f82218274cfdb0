"""Small real image data sets as bucket-like folders: {key: PNG bytes}, one folder per class.

Animal-MNIST silhouettes (the `animal-mnist` wheel, read by `infra.animals`
without its TensorFlow loader) and sklearn's 8x8 digits, upscaled to images
the backbone can take. Nothing is downloaded.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from infra import animals


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
    images, labels = animals.load()
    return folder(images, labels, animals.CLASSES, per_class, prefix, seed)


def digits_folder(per_class: int = 50, prefix: str = "users/ann/digits/", seed: int = 0) -> dict[str, bytes]:
    from sklearn.datasets import load_digits  # ships with scikit-learn (a test dependency)

    digits = load_digits()
    pixels = digits.images * (255.0 / 16.0)  # 0..16 ink levels to 0..255
    return folder(pixels, digits.target, [f"digit_{d}" for d in range(10)], per_class, prefix, seed)
