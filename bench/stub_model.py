"""A stand-in for the default model whose prediction costs nothing: the scale bench measures the database.

The real `Model` is built from the real labels file (so class names resolve
and score by WordNet ancestry exactly as in production), without loading any
interpreter; its prediction is a deterministic one-hot vector chosen by a hash
of the image's bytes. `install()` puts it where `common.models.model.get_model` finds
the default model, so every caller (sort worker, classify) uses it unchanged.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence

import numpy as np

from common.core import errors
from common.core.config import settings
from common.models import vocabulary
from common.models.model import Model, Source, _models, read


class StubModel(Model):
    seconds = 0.0  # how long a prediction takes, asleep: the pace of the real model without its CPU

    def predict(self, data: bytes) -> np.ndarray:
        if self.seconds:
            time.sleep(self.seconds)
        probs = np.zeros(len(self.labels))
        probs[zlib.crc32(data) % len(self.labels)] = 1.0
        return probs

    def predict_many(self, sources: Sequence[Source]) -> list[np.ndarray | errors.AppError]:
        outcomes: list[np.ndarray | errors.AppError] = []
        for source in sources:
            try:
                outcomes.append(self.predict(read(source)))
            except errors.AppError as exc:
                outcomes.append(exc)
        return outcomes


def install(seconds: float = 0.0) -> StubModel:
    """Serve the stub as the default model in this process; each prediction sleeps `seconds`."""
    s = settings().models
    words = vocabulary.builtin(s.default_model)
    stub = StubModel(name=s.default_model, vocabulary=words, input_size=words.input_size, resize=words.resize)
    stub.seconds = seconds
    _models.loaded[s.default_model] = stub
    return stub


def tiny_png() -> bytes:
    """A real 8x8 PNG (the request parser reads its type); the stub never decodes it."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 110, 100)).save(out, "PNG")
    return out.getvalue()
