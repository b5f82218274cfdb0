"""`python -m bench.preprocess`: decode + crop cost per image, the fast path against the reference pipeline.

In-process, timeit, best of 5 runs. The reference pipeline (`prepare(exact=True)`) resizes the whole
image and then crops; the fast path resizes only the crop's box (and averages big downscales first).
"""

from __future__ import annotations

import io
import timeit
from collections.abc import Callable

from PIL import Image

from common import images
from infra import photos


def encoded(name: str, size: tuple[int, int], fmt: str) -> bytes:
    img = Image.open(io.BytesIO(photos.data(name))).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


def best_ms(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1000


def main() -> None:
    cases = {
        "640x427 JPEG": encoded("coffee.png", (640, 427), "JPEG"),
        "4000x3000 JPEG": encoded("coffee.png", (4000, 3000), "JPEG"),
        "3000x2000 PNG": encoded("astronaut.png", (3000, 2000), "PNG"),
        "5000x250 PNG (20:1)": encoded("camera.png", (5000, 250), "PNG"),
    }
    print(f"{'image':22s} {'reference ms':>13s} {'fast ms':>8s}")
    for name, data in cases.items():
        number = 200 if len(data) < 200_000 else 10
        exact = best_ms(lambda d=data: images.prepare(d, exact=True), number)  # type: ignore[misc]
        fast = best_ms(lambda d=data: images.prepare(d), number)  # type: ignore[misc]
        print(f"{name:22s} {exact:13.2f} {fast:8.2f}")


if __name__ == "__main__":
    main()
