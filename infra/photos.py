"""The real test photos, shipped inside installed packages (scikit-image and matplotlib), never downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np

PHOTOS = ["grace_hopper.jpg", "chelsea.png", "coffee.png", "astronaut.png", "camera.png", "coins.png"]


def path(name: str) -> Path:
    if name == "grace_hopper.jpg":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / name
    import skimage

    return Path(skimage.__file__).parent / "data" / name


def data(name: str) -> bytes:
    return path(name).read_bytes()


def crop(name: str, size: int = 224, resize: int = 256) -> np.ndarray:
    from common.media.images import prepare

    return prepare(data(name), size, resize, exact=True)  # the reference pipeline, bit for bit
