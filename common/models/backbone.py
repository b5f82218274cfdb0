"""The shared feature extractor: a built-in EfficientNet-Lite up to its pooled features, served by LiteRT.

One backbone, many heads: the built-in ImageNet classifier and every custom
model are this network plus a linear head (`common.models.heads`), so a process loads
the backbone once (~30 ms, ~35 MB per interpreter of its pool) however many
models it serves, and training a custom model needs no TensorFlow, only these
embeddings and numpy. The file
is `<model>_features.tflite`, written by `infra/build_model.py`; it takes the
same uint8-range 1xHxWx3 float32 crop as the classifier (the `(x-127)/128`
preprocessing is inside the network).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.core import parallel
from common.core.config import settings
from common.core.lazy import PerKey
from common.media import images
from common.models import layout as model_layout
from common.models.interpreters import Pool

DEFAULT = "efficientnet_lite0"


@dataclass
class Backbone:
    path: Path
    input_size: int
    resize: int
    width: int
    # a few interpreters, so that concurrent callers embed side by side (common.models.interpreters)
    pool: Pool

    @classmethod
    def load(cls, path: Path, resize: int | None = None) -> Backbone:
        """The backbone at `path`; `resize` (the shorter side before the centre crop) as its labels file says."""
        config = settings().models
        pool = Pool(path, config.model_interpreters, config.model_threads, config.model_lead_threads)
        if config.model_warmup:
            pool.warm()
        size = pool.input_shape[1]
        # without a labels file, the Lite0 rule: shorter side to 256/224 of the input size, then the centre square
        return cls(path=path, input_size=size, resize=resize or round(size * 256 / 224),
                   width=pool.output_shape[-1], pool=pool)

    @property
    def model(self) -> str:
        """The built-in model this backbone is part of (`<model>_features.tflite`)."""
        return self.path.name.removesuffix("_features.tflite")

    def prepare(self, data: bytes) -> np.ndarray:
        """The HxWx3 uint8 crop this backbone takes, from untrusted image bytes (limits checked first)."""
        return images.prepare(data, self.input_size, self.resize)

    def embed(self, crop: np.ndarray) -> np.ndarray:
        """The (width,) float32 pooled features of one HxWx3 uint8 crop."""
        if crop.shape != (self.input_size, self.input_size, 3):
            raise ValueError(f"expected a {self.input_size}x{self.input_size}x3 crop, got {crop.shape}")
        return self.pool.run(crop).astype(np.float32, copy=False)

    def embed_batch(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N, width) float32 features, the crops spread over the pool's interpreters (see common.core.parallel
        for why this beats one inference on a batch tensor); the same numbers as one at a time."""
        out = np.empty((len(crops), self.width), dtype=np.float32)
        for i, features in enumerate(parallel.ordered_map(self.embed, crops, self.pool.size)):
            out[i] = features
        return out


def _load(where: tuple[Path, str]) -> Backbone:
    path = model_layout.features(*where)
    if not path.is_file():  # a deployment fault, not the client's: logged, and a plain 500 for them
        raise RuntimeError(f"{path} is missing: build it with `nox -s model -- --if-missing`")
    return Backbone.load(path, _resize(*where))


_backbones: PerKey[tuple[Path, str], Backbone] = PerKey(_load)


def get_backbone(model: str = DEFAULT) -> Backbone:
    """The backbone of `model`, loaded on first use and kept for the life of the process."""
    return _backbones.get((settings().models.models_dir, model))


def _resize(folder: Path, model: str) -> int | None:
    """The resize the build stored in the model's labels file (Lite2: 292 for 260, not the 256/224 rule's 297)."""
    path = model_layout.labels(folder, model)
    if not path.is_file():
        return None
    return int(json.loads(path.read_text())["resize"])
