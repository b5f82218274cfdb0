"""Custom models end to end: 2,000 animal-mnist images in 10 classes, from POST /models to `ready`.

Targets (issue 12, 22): under 40 s on 2 cores; embedding images/s at least 0.85 of the in-process
decode+embed rate of two concurrent callers on the same images and views, measured around the run; test
accuracy at least 0.95; warm classify with the custom model within 10 % of the built-in one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from bench.report import pct, table
from infra import animals
from infra.stack_process import LocalStack

PER_CLASS = 200
AUGMENT = 2


def in_process_rate(files: dict[str, bytes], views: int) -> float:
    """Images per second through decode + embed (+ views) in this process, on the same images, two callers
    at once (bench/yardstick.py): the machine's limit for this work."""
    from bench.yardstick import two_callers
    from common.models.backbone import get_backbone
    from common.training import augment as aug

    backbone = get_backbone()

    def one(pair: tuple[str, bytes]) -> None:
        crop = backbone.prepare(pair[1])
        for view in [crop, *aug.augment(crop, views, aug.image_seed(0, pair[0]))]:
            backbone.embed(view)

    return two_callers(one, list(files.items())[:200])


def latencies(stack: LocalStack, user: dict, image: bytes, models: list[str | None], runs: int = 40,
              ) -> dict[str | None, list[float]]:
    """Each model's classify latencies (s) for `image`, the models taken in turn request by request, so what else
    the stack or the machine does meanwhile falls on all of them alike (None: the default model)."""
    session = requests.Session()
    out: dict[str | None, list[float]] = {model: [] for model in models}
    for _ in range(runs):
        for model in models:
            start = time.perf_counter()
            r = session.post(stack.url + "/classify", headers=user["headers"], files={"file": ("a.png", image)},
                             data={"model": model} if model else {}, timeout=60)
            if r.status_code != 200:
                raise RuntimeError(f"classify answered {r.status_code}: {r.text[:200]}")
            out[model].append(time.perf_counter() - start)
    return out


def run(tmp: Path, models_dir: str) -> dict[str, Any]:
    files = animals.animal_folder(per_class=PER_CLASS, prefix="")
    data = tmp / "data"
    for key, png in files.items():
        path = data / "bucket" / "users" / "trainer" / "animals" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
    before = in_process_rate(files, AUGMENT)
    stack = LocalStack(data, Path(models_dir), SIGNUPS_PER_ADDRESS="1000").start()
    try:
        user = stack.user("trainer", len(files) + 200)
        start = time.perf_counter()
        r = requests.post(stack.url + "/models", headers=user["headers"], timeout=60,
                          json={"name": "animals", "source": "animals/", "augment": AUGMENT})
        if r.status_code != 202:
            raise RuntimeError(f"POST /models answered {r.status_code}: {r.text[:300]}")
        embedded_at = None
        while (model := requests.get(stack.url + "/models/animals", headers=user["headers"], timeout=60).json()
               )["status"] not in ("ready", "failed"):
            if embedded_at is None and model["status"] == "training":
                embedded_at = time.perf_counter()
            time.sleep(0.05)
        total = time.perf_counter() - start
        embedding = (embedded_at or time.perf_counter()) - start
        if model["status"] != "ready":
            raise RuntimeError(f"training failed: {model}")
        image = next(iter(files.values()))
        latencies(stack, user, image, [None, "animals"], 5)  # warm: the custom head read and cached
        taken = latencies(stack, user, image, [None, "animals"])
        builtin, custom = taken[None], taken["animals"]
    finally:
        stack.stop()
    rate = len(files) / embedding
    local = (before + in_process_rate(files, AUGMENT)) / 2
    accuracy = model["metrics"]["accuracy"]
    b50, c50 = pct(builtin, 0.5) * 1000, pct(custom, 0.5) * 1000
    table(f"custom model: {len(files)} animal-mnist images, 10 classes, augment {AUGMENT}, on the local stack", [
        ("figure", "value", "baseline / target"),
        ("POST /models -> ready (s)", f"{total:.1f}", "target < 40"),
        ("embedding (s), images/s", f"{embedding:.1f}, {rate:.1f}", f"two callers in process {local:.1f} img/s"),
        ("views/s (image + its views)", f"{rate * (1 + AUGMENT):.1f}", f"in process {local * (1 + AUGMENT):.1f}"),
        ("ratio to two callers in process", f"{rate / local:.2f}", "target >= 0.85"),
        ("test accuracy / macro F1", f"{accuracy:.3f} / {model['metrics']['macro_f1']:.3f}", "target >= 0.95"),
        ("classify p50, custom vs built-in (ms)", f"{c50:.1f} vs {b50:.1f}", f"{c50 / b50:.2f}x (target <= 1.10)"),
    ])
    return {"images": len(files), "augment": AUGMENT, "seconds_to_ready": total, "embedding_seconds": embedding,
            "embedding_images_per_s": rate, "in_process_images_per_s": local, "efficiency": rate / local,
            "accuracy": accuracy, "macro_f1": model["metrics"]["macro_f1"], "split": model["split"],
            "classify_p50_ms": {"builtin": b50, "custom": c50, "ratio": c50 / b50}}
