"""One model of the side-by-side comparison, in a fresh process: `python -m bench.models_side MODEL T0 [cold]`.

MODEL is efficientnet_lite0 or efficientnet_lite2 (served as the functions serve them: the LiteRT pool,
`Model.predict` on the file's bytes) or inception_v3: the seeds' way, a Keras InceptionV3 in the process,
each photo opened with Pillow, resized to 299x299, `preprocess_input` and `model.predict`. InceptionV3's
pretrained weights cannot be fetched here (nothing but package registries is reachable), so its
architecture is built with random weights (`weights=None`): the same layers, shapes and arithmetic, so the
same time and memory (a convolution costs the same whatever its weights hold); its predictions mean nothing
and are not used. Its cold start lacks the seeds' ~92 MB weights-file read, so it is a lower bound.

Prints one JSON line: cold start (process start, T0, to the first prediction; only that with `cold`), one
caller's p50/p99 and images/s on the shipped photos (decode included), two concurrent callers' images/s,
and the process's peak RSS.
"""

from __future__ import annotations

import io
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

ROUNDS, PER_ROUND = 3, 16


def inception() -> Callable[[bytes], Any]:
    """The seeds' classify: a Keras InceptionV3 and `model.predict` per photo."""
    import keras
    import numpy as np
    from PIL import Image

    model = keras.applications.InceptionV3(weights=None)
    preprocess = keras.applications.inception_v3.preprocess_input

    def predict(data: bytes) -> Any:
        image = Image.open(io.BytesIO(data)).convert("RGB").resize((299, 299))
        batch = preprocess(np.asarray(image, dtype=np.float32)[np.newaxis])
        return model.predict(batch, verbose=0)

    return predict


def served(name: str) -> Callable[[bytes], Any]:
    from common.models.model import get_model

    return get_model(name).predict


def measure(predict: Callable[[bytes], Any], datas: list[bytes]) -> dict[str, float]:
    from bench.yardstick import caller_rates

    lone, two, latencies = caller_rates(predict, datas, ROUNDS, PER_ROUND)
    latencies.sort()
    return {"p50_ms": 1000 * latencies[len(latencies) // 2], "p99_ms": 1000 * latencies[-1 - len(latencies) // 100],
            "images_per_s": statistics.median(lone), "two_callers_images_per_s": statistics.median(two)}


def main() -> None:
    name, t0 = sys.argv[1], float(sys.argv[2])
    from infra import photos

    datas = [photos.data(p) for p in photos.PHOTOS]
    predict = inception() if name == "inception_v3" else served(name)
    predict(datas[0])
    result: dict[str, Any] = {"model": name, "cold_s": time.time() - t0}
    if sys.argv[3:] != ["cold"]:
        result |= measure(predict, datas)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
