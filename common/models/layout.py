"""Where a built-in model's files lie in the models folder, by name: one rule for the server, its health
check, the bundles and the build (no numpy here: the health check and the build tooling read it too).

A model is served either whole (`<name>.tflite`) or as the shared backbone (`<name>_features.tflite`) plus
its head (`<name>.head.npz` and `.head.json`); both ways need `<name>.labels.json`.
"""

from __future__ import annotations

import re
from pathlib import Path

# A custom model's name: what the registry resolves and POST /models accepts (numpy-free, for the web function).
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{1,39}")


def labels(folder: Path, name: str) -> Path:
    return folder / f"{name}.labels.json"


def classifier(folder: Path, name: str) -> Path:
    return folder / f"{name}.tflite"


def features(folder: Path, name: str) -> Path:
    return folder / f"{name}_features.tflite"


def head(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / f"{name}.head.npz", folder / f"{name}.head.json"


def whole(folder: Path, name: str) -> list[Path]:
    """The files of the model served whole."""
    return [labels(folder, name), classifier(folder, name)]


def split(folder: Path, name: str) -> list[Path]:
    """The files of the model served as backbone and head (what a bundle carries)."""
    return [labels(folder, name), features(folder, name), *head(folder, name)]


def servable(folder: Path, name: str) -> bool:
    return all(p.is_file() for p in split(folder, name)) or all(p.is_file() for p in whole(folder, name))
