"""Large real-world-sized photos in process: a 12-megapixel JPEG, HEIC (an iPhone's grid of 512x512 tiles) and
AVIF, and a large PNG, made by upscaling the sample photos.

Reports each one's end-to-end classify time and its parts (sniff, header bounds, decode, resize to the crop,
infer); the JPEG reduced-scale decode (`draft`) at each scale against exact decoding (top-1 agreement and max
|Δprob| over the six sample photos at 12 MP), and how close the decode is to its entropy-decoding floor (a
decode at 1/8 scale reads every coefficient but does almost no inverse DCT). libheif cannot decode at a reduced
scale: a HEIC is decoded whole, then reduced by averaging pixel blocks on the way to the crop (`Image.reduce`
inside the resize), which is checked against the exact pipeline the same way, with libheif's threads at 1 and
at its default.
"""

from __future__ import annotations

import functools
import io
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.report import table
from infra import photos

SIZE = (4032, 3024)  # a 12-megapixel phone photo
PNG_SIZE = (6000, 4000)


def median_ms(run: Callable[[], Any], times: int) -> float:
    return medians({"": run}, times)[""]


def medians(runs: dict[str, Callable[[], Any]], times: int) -> dict[str, float]:
    """The median ms of each run, taken in turns (round after round), so a machine whose load drifts during the
    measurement shifts them all alike rather than whichever ran last."""
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(times):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def upscaled(name: str, size: tuple[int, int] = SIZE) -> Image.Image:
    return Image.open(io.BytesIO(photos.data(name))).convert("RGB").resize(size, Image.Resampling.BICUBIC)


def encode(img: Image.Image, kind: str) -> bytes:
    out = io.BytesIO()
    if kind == "HEIC":
        import pillow_heif

        pillow_heif.options.GRID_TILE_SIZE = 512
        pillow_heif.from_pillow(img).save(out, format="HEIF", quality=85)
    elif kind == "AVIF":
        img.save(out, "AVIF", quality=80, speed=8)
    else:
        img.save(out, kind, **({"quality": 90} if kind == "JPEG" else {"compress_level": 6}))
    return out.getvalue()


def cached(tmp: Path, name: str, make: Callable[[], bytes]) -> bytes:
    """Encoding a 12 MP HEIC takes half a minute here: made once per bench folder."""
    path = tmp / name
    if not path.exists():
        tmp.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make())
    return path.read_bytes()


def parts(model: Any, data: bytes, times: int) -> dict[str, float]:
    """One classify step by step, each part timed within the same pass (median over passes), and the whole
    classify (prepare + infer) timed as served."""
    from common.media import images, imagetypes

    size, resize = model.input_size, model.resize
    steps: dict[str, list[float]] = {k: [] for k in ("sniff", "header bounds", "decode", "resize to crop", "infer")}
    for _ in range(times):
        marks = [time.perf_counter()]
        imagetypes.media_type(data)
        marks.append(time.perf_counter())
        img = images._opened(data, resize, True)
        marks.append(time.perf_counter())
        img.load()
        marks.append(time.perf_counter())
        crop = np.asarray(images._crop(*images._decode(img, size, resize, False), size, resize), dtype=np.uint8)
        marks.append(time.perf_counter())
        model.probabilities(crop)
        marks.append(time.perf_counter())
        for n, values in enumerate(steps.values()):
            values.append(marks[n + 1] - marks[n])
    whole = median_ms(lambda: model.probabilities(model.prepare(data)), times)
    return {k: statistics.median(v) * 1000 for k, v in steps.items()} | {"end to end": whole}


def drafted(data: bytes, factor: int, size: int, resize: int) -> np.ndarray:
    """The crop from a JPEG decoded at 1/factor scale (the rest of the pipeline as served)."""
    from common.media import images

    img = images.open_image(data)
    if factor > 1:
        img.draft("RGB", (img.width // factor, img.height // factor))
    return np.asarray(images._crop(*images._decode(img, size, resize, False), size, resize), dtype=np.uint8)


def _jpeg_of(name: str) -> Callable[[], bytes]:
    return lambda: encode(upscaled(name), "JPEG")


def _drafting(factor: int, size: int, resize: int) -> Callable[[bytes], np.ndarray]:
    return lambda data: drafted(data, factor, size, resize)


def jpeg_scales(model: Any, tmp: Path) -> list[dict[str, Any]]:
    """Per draft scale: decode + crop time on the 12 MP coffee, and agreement with exact decoding on all six."""
    from common.media import images

    size, resize = model.input_size, model.resize
    files = {name: cached(tmp, f"{name}.jpg", _jpeg_of(name)) for name in photos.PHOTOS}
    exact = {name: model.probabilities(images.prepare(d, size, resize, use_draft=False, exact=True))
             for name, d in files.items()}
    coffee = files["coffee.png"]
    ways: dict[str, Callable[[bytes], np.ndarray]] = {f"1/{f}": _drafting(f, size, resize) for f in (1, 2, 4, 8)}
    ways["as served (draft to >= 2x resize)"] = model.prepare
    ms = medians({way: functools.partial(crop, coffee) for way, crop in ways.items()}, 7)
    rows = []
    for way, crop in ways.items():
        probs = {name: model.probabilities(crop(d)) for name, d in files.items()}
        rows.append({"scale": way, "ms": ms[way],
                     "top1_agree": sum(int(np.argmax(p) == np.argmax(exact[n])) for n, p in probs.items()),
                     "max_dprob": max(float(np.max(np.abs(p - exact[n]))) for n, p in probs.items())})
    return rows


def heic_threads(model: Any, data: bytes) -> dict[str, Any]:
    """The served HEIC path against exact decoding of the same file, and decode time per libheif thread count."""
    import pillow_heif

    from common.media import images

    exact = model.probabilities(images.prepare(data, model.input_size, model.resize, use_draft=False, exact=True))
    served = model.probabilities(model.prepare(data))
    out: dict[str, Any] = {"top1_agree": bool(np.argmax(served) == np.argmax(exact)),
                           "max_dprob": float(np.max(np.abs(served - exact)))}
    default = pillow_heif.options.DECODE_THREADS

    def threaded(threads: int) -> Callable[[], Any]:
        def run() -> Any:
            pillow_heif.options.DECODE_THREADS = threads  # read by each open
            return model.prepare(data)
        return run

    ms = medians({str(t): threaded(t) for t in sorted({1, 2, default})}, 5)
    pillow_heif.options.DECODE_THREADS = default
    return out | {f"prepare_ms_threads_{t}": v for t, v in ms.items()}


def beside_a_busy_thread(model: Any) -> dict[str, dict[str, float]]:
    """prepare() of the shipped photos alone and beside a thread running Python, with the PNG's image data read as
    one chunk (common/media/pngjoin.py) and chunk by chunk as Pillow does (libpng writes 8 KiB chunks; each
    decoder call gives the GIL back and waits to take it again)."""
    import threading

    from common.media import pngjoin

    joined, out = pngjoin.reader, {}

    def timed(data: bytes, reader: Callable[[bytes], Any]) -> float:
        vars(pngjoin)["reader"] = reader
        try:
            return median_ms(lambda: model.prepare(data), 5)
        finally:
            vars(pngjoin)["reader"] = joined

    def spin(stop: threading.Event) -> None:  # a thread running Python, as a request being parsed does
        while not stop.is_set():
            sum(range(1000))

    for name in ("astronaut.png", "coffee.png", "grace_hopper.jpg"):
        data = photos.data(name)
        for busy in (False, True):
            stop = threading.Event()
            if busy:
                threading.Thread(target=spin, args=(stop,), daemon=True).start()
            try:
                out[f"{name}{' beside a busy thread' if busy else ''}"] = {
                    "chunk_by_chunk_ms": timed(data, io.BytesIO), "joined_ms": timed(data, joined)}
            finally:
                stop.set()
    return out


def run(tmp: Path, models_dir: str) -> dict[str, Any]:
    import os

    os.environ.setdefault("MODELS_DIR", models_dir)
    from common.models.model import get_model

    model = get_model()
    coffee = upscaled("coffee.png")
    files = {"12 MP JPEG (q90)": cached(tmp, "coffee.jpg", lambda: encode(coffee, "JPEG")),
             "12 MP HEIC (512 tiles, q85)": cached(tmp, "coffee.heic", lambda: encode(coffee, "HEIC")),
             "12 MP AVIF (q80)": cached(tmp, "coffee.avif", lambda: encode(coffee, "AVIF")),
             "24 MP PNG": cached(tmp, "astronaut.png", lambda: encode(upscaled("astronaut.png", PNG_SIZE), "PNG"))}
    timed = {name: parts(model, data, 5) for name, data in files.items()}
    steps = list(next(iter(timed.values())))
    table("photos: large photos in process, ms (median of 5)", [("photo", "MB", *steps)] + [
        (name, f"{len(files[name]) / 1e6:.1f}", *(f"{timed[name][s]:.2f}" for s in steps)) for name in files])
    scales = jpeg_scales(model, tmp)
    table("photos: JPEG decode scale vs exact decoding (12 MP, six photos)", [
        ("scale", "decode+crop ms", "top-1 agree", "max |Δprob|")] + [
        (r["scale"], f"{r['ms']:.1f}", f"{r['top1_agree']}/{len(photos.PHOTOS)}", f"{r['max_dprob']:.4f}")
        for r in scales])
    floor, served = scales[3]["ms"], scales[-1]["ms"]
    heic = heic_threads(model, files["12 MP HEIC (512 tiles, q85)"])
    table("photos: JPEG entropy floor, HEIC decode then reduce", [("", "value"),
          ("JPEG as served / decode at 1/8 (entropy floor)", f"{served:.1f} / {floor:.1f} ms = {served / floor:.2f}x"),
          ("HEIC served vs exact: top-1 agree, max |Δprob|", f"{heic['top1_agree']}, {heic['max_dprob']:.4f}"),
          *((f"HEIC prepare, {k.rsplit('_', 1)[1]} libheif thread(s)", f"{v:.1f} ms")
            for k, v in heic.items() if k.startswith("prepare_ms"))])
    busy = beside_a_busy_thread(model)
    table("photos: prepare() ms, a PNG's image data read chunk by chunk vs joined into one (pngjoin)", [
        ("photo", "chunk by chunk", "joined")] + [
        (name, f"{v['chunk_by_chunk_ms']:.1f}", f"{v['joined_ms']:.1f}") for name, v in busy.items()])
    return {"parts_ms": timed, "bytes": {k: len(v) for k, v in files.items()}, "jpeg_scales": scales,
            "jpeg_floor_ratio": served / floor, "heic": heic, "png_join": busy}
