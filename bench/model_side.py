"""One side of the model benchmark, in a fresh process: `python -m bench.model_side SIDE [T0]`.

SIDE is keras, litert, cold-keras or cold-litert.

Prints one JSON line. `cold-*` measures process start (passed in as T0) to the
first prediction; the others also time warm single-image predictions and
report the peak RSS of the process.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np


def crops() -> np.ndarray:
    from infra import photos

    return np.stack([photos.crop(p) for p in photos.PHOTOS]).astype(np.float32)


def keras_model():
    """What the seeds do: a Keras model in the process, `model.predict` per request."""
    from infra.build_model import build_keras

    return build_keras("efficientnet_lite0", None)


def macs(model) -> int:
    """Multiply-accumulates of one image, from the Keras layers' shapes."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c = layer.output.shape
            total += h * w * c * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def tf_matmul_flops(n: int = 4096) -> float:
    """The machine's float32 peak as TensorFlow (oneDNN) reaches it on a large matmul."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    tf.linalg.matmul(a, a).numpy()
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        tf.linalg.matmul(a, a).numpy()
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def main() -> None:
    side, t0 = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else time.time()
    result: dict[str, float | int | str] = {"side": side}
    if side.endswith("keras"):
        model = keras_model()
        batch = crops()
        model.predict(batch[:1], verbose=0)
        result["cold_s"] = time.time() - t0
        predict = lambda x: model.predict(x, verbose=0)  # noqa: E731
        result["macs"] = macs(model)
        result["matmul_flops"] = tf_matmul_flops()
        n = 40
    else:
        from common.models.model import get_model

        served = get_model()
        batch = crops()
        served.probabilities(batch[0].astype(np.uint8))
        result["cold_s"] = time.time() - t0
        predict = lambda x: served.probabilities(x[0].astype(np.uint8))  # noqa: E731
        n = 300
    if not side.startswith("cold"):
        times = []
        for i in range(n):
            one = batch[i % len(batch)][None]
            start = time.perf_counter()
            predict(one)
            times.append(time.perf_counter() - start)
        times.sort()
        result.update(p50_ms=1000 * times[len(times) // 2], p99_ms=1000 * times[int(len(times) * 0.99) - 1],
                      images_per_s=len(times) / sum(times))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
