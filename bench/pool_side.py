"""The serving pool in a fresh process: `python -m bench.pool_side pool` or `... cold T0 PHOTO`.

`pool` (run with MODEL_INTERPRETERS / MODEL_THREADS set): images per second of
decode + infer for one caller, for two concurrent callers, and for a batch of 16
(`predict_many`) against 16 single predictions; the results of the concurrent and
batched paths against the sequential ones; peak RSS. `cold`: where a classify
instance's start-up goes, from process start (T0) to a second prediction. Prints
one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BEST_OF = 3


def rate(run: Callable[[], int]) -> float:
    """Images per second of `run` (which returns how many it did), best of a few: other processes share
    the cores, and the best run is the one they disturbed least."""
    best = 0.0
    for _ in range(BEST_OF):
        start = time.perf_counter()
        done = run()
        best = max(best, done / (time.perf_counter() - start))
    return best


def pool() -> dict[str, Any]:
    import numpy as np

    from common.config import settings
    from common.model import get_model
    from infra import photos

    model = get_model()
    datas = [photos.data(name) for name in photos.PHOTOS]
    batch = [datas[i % len(datas)] for i in range(16)]
    expected = [model.predict(d) for d in batch]

    def sequential(n: int = 32) -> int:
        for i in range(n):
            model.predict(batch[i % 16])
        return n

    def two_callers() -> int:
        threads = [threading.Thread(target=sequential) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return 64

    def batched() -> int:
        return len(model.predict_many(batch))

    out: dict[str, Any] = {"interpreters": settings().model_interpreters, "threads": settings().model_threads,
           "sequential": rate(sequential), "two_callers": rate(two_callers),
           "singles_16": rate(lambda: sequential(16)), "batch_16": rate(batched)}
    many = model.predict_many(batch)
    out["max_abs_dprob_batch"] = max(float(np.abs(g - e).max()) for g, e in zip(many, expected, strict=True))
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["interpreters_made"] = model.backbone.pool.interpreters if model.backbone else None
    return out


def cold(t0: float, photo: Path) -> dict[str, float]:
    """Milliseconds per step of a classify instance's start, in the order it happens."""
    marks: dict[str, float] = {"python start": time.time() - t0}
    last = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        marks[name] = now - last
        last = now

    import numpy  # noqa: F401

    mark("import numpy")
    import PIL.Image  # noqa: F401

    mark("import Pillow")
    import ai_edge_litert.interpreter  # noqa: F401

    mark("import ai_edge_litert")
    import flask  # noqa: F401
    import functions_framework  # noqa: F401

    mark("import flask + functions_framework")
    from common import classify, classify_request, httpauth, seed_routes, web  # noqa: F401

    mark("import common (classify's modules)")
    from common import model as serving
    from common.backbone import get_backbone
    from common.heads import load_head
    from common.interpreters import Pool

    config = serving.settings()
    load_head(config.models_dir, config.default_model)
    mark("head (.npz)")
    pool = Pool(config.models_dir / f"{config.default_model}_features.tflite", 1, config.model_threads)
    mark("interpreter: mmap + XNNPACK set-up")
    crop = numpy.full(pool.input_shape[1:], 128, dtype=numpy.uint8)
    pool.run(crop)
    mark("first inference")
    pool.run(crop)
    mark("second inference")
    data = photo.read_bytes()  # read here: importing what finds the test photos would load Pillow's plug-ins
    get_backbone()
    mark("the process's backbone (another interpreter; warm-up when on)")
    model = serving.get_model()
    mark("the rest of the model's load (labels; warm-up when on)")
    model.predict(data)
    mark("first request's prediction")
    model.predict(data)
    mark("second request's prediction")
    return {k: round(v * 1000, 1) for k, v in marks.items()}


def main() -> None:
    result = pool() if sys.argv[1] == "pool" else cold(float(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
