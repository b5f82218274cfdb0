"""Small real image data sets as bucket-like folders: {key: PNG bytes}, one folder per class.

Animal-MNIST silhouettes (the `animal-mnist` wheel, read by `infra.animals`
without its TensorFlow loader) and sklearn's 8x8 digits, upscaled to images
the backbone can take. Nothing is downloaded.
"""

from __future__ import annotations

from infra.animals import animal_folder, folder, png

__all__ = ["animal_folder", "digits_folder", "png"]


def digits_folder(per_class: int = 50, prefix: str = "users/ann/digits/", seed: int = 0) -> dict[str, bytes]:
    from sklearn.datasets import load_digits  # ships with scikit-learn (a test dependency)

    digits = load_digits()
    pixels = digits.images * (255.0 / 16.0)  # 0..16 ink levels to 0..255
    return folder(pixels, digits.target, [f"digit_{d}" for d in range(10)], per_class, prefix, seed)
