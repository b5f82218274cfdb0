"""The serving pool in a fresh process: `python -m bench.pool_side pool SHAPES|rss` or `... cold T0 PHOTO`.

SHAPES is interpreters x XNNPACK threads, e.g. `1x2,2x1,2x2`. `pool`: images
per second of decode + infer for one caller (16 predictions), two concurrent
callers, and a batch of 16 (`predict_many`), every shape in the same process,
taken in turn; and the largest difference of the batch's probabilities from
the single predictions. `rss`: the peak RSS of a process serving with the shape
MODEL_INTERPRETERS x MODEL_THREADS.
`cold`: where a classify instance's start-up goes, from process start (T0) to a
second prediction. Prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROUNDS = 5


def variants(shapes: list[tuple[int, int]]) -> dict[str, Any]:
    """The default model once per pool shape (interpreters x threads), each pool already grown and warm."""
    import dataclasses

    from common.models.interpreters import Pool
    from common.models.model import get_model

    model = get_model()
    assert model.backbone is not None, "the pool bench needs the backbone + head files"
    out = {}
    for n, t in shapes:
        backbone = dataclasses.replace(model.backbone, pool=Pool(model.backbone.path, n, t))
        out[f"{n} x {t}"] = dataclasses.replace(model, backbone=backbone)
    mixed = Pool(model.backbone.path, 2, 1, lead_threads=2)  # the default: a 2-thread lead, then 1-thread ones
    out["lead 2 + 1"] = dataclasses.replace(model, backbone=dataclasses.replace(model.backbone, pool=mixed))
    return out


def pool(shapes: list[tuple[int, int]]) -> dict[str, Any]:
    """Rounds that take every shape in turn, so that what other processes do to the cores falls on all alike;
    the median round per shape, and the CPU time per image of each way."""
    import numpy as np

    from infra import photos

    models = variants(shapes)
    datas = [photos.data(name) for name in photos.PHOTOS]
    batch = [datas[i % len(datas)] for i in range(16)]

    def sequential(model: Any) -> int:
        for data in batch:
            model.predict(data)
        return len(batch)

    def two_callers(model: Any) -> int:
        threads = [threading.Thread(target=sequential, args=(model,)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return 2 * len(batch)

    def batched(model: Any) -> int:
        return len(model.predict_many(batch))

    ways = {"sequential": sequential, "two_callers": two_callers, "batch_16": batched}
    for model in models.values():
        two_callers(model)  # grow and warm every pool
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {k: {w: [] for w in ways} for k in models}
    for _ in range(ROUNDS):
        for name, model in models.items():
            for way, run in ways.items():
                wall, cpu = time.perf_counter(), time.process_time()
                done = run(model)
                runs[name][way].append((done / (time.perf_counter() - wall), (time.process_time() - cpu) / done))
    expected = [models[next(iter(models))].predict(d) for d in batch]
    result: dict[str, Any] = {}
    for name, model in models.items():
        many = model.predict_many(batch)
        result[name] = {way: statistics.median(r for r, _ in got) for way, got in runs[name].items()}
        result[name] |= {f"{way}_cpu_ms": 1000 * statistics.median(c for _, c in got)
                         for way, got in runs[name].items()}
        result[name]["max_abs_dprob"] = max(float(np.abs(g - e).max()) for g, e in zip(many, expected, strict=True))
    return result


def rss() -> dict[str, Any]:
    """Peak RSS of a process serving with the shape MODEL_INTERPRETERS x MODEL_THREADS, after two concurrent
    batches of 16 (every interpreter made, two images decoded at once per batch)."""
    from common.models.model import get_model
    from infra import photos

    model = get_model()
    data = photos.data("grace_hopper.jpg")
    threads = [threading.Thread(target=model.predict_many, args=([data] * 16,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "interpreters": model.backbone.pool.interpreters if model.backbone else None}


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
    from common.http import auth as httpauth  # noqa: F401

    mark("import common (classify's modules)")
    from common.models import model as serving
    from common.models.backbone import get_backbone
    from common.models.heads import load_head
    from common.models.interpreters import Pool

    config = serving.settings()
    load_head(config.models.models_dir, config.models.default_model)
    mark("head (.npz)")
    models = config.models
    pool = Pool(models.models_dir / f"{models.default_model}_features.tflite", 1, models.model_threads)
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
    if sys.argv[1] == "cold":
        result: dict[str, Any] = cold(float(sys.argv[2]), Path(sys.argv[3]))
    else:
        result = rss() if sys.argv[1] == "rss" else pool(
            [(int(a), int(b)) for a, b in (shape.split("x") for shape in sys.argv[2].split(","))])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
