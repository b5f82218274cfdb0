"""Decoding costs what the model uses: slivers are refused, every other image costs at most a photo's worth.

Before: a 65000x1 PNG (143 bytes) cost 45 s and 17.7 GB (its short side scaled
to 256, its long side to 16.6 million pixels); 4000x1 cost 1.3 s and 1.1 GB.
"""

from __future__ import annotations

import io
import time
import timeit
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from common.core import errors
from common.http.envelope import status_of
from common.media import images
from infra import photos
from tests import images as odd
from tests.conftest import Api, make_api

PEAK_RSS_MB = 600


def png(width: int, height: int, mode: str = "L") -> bytes:
    return odd.encode(Image.new(mode, (width, height), 128), "PNG")


@pytest.mark.fast
@pytest.mark.parametrize("size", [(65000, 1), (4000, 1), (1, 4000), (2100, 100), (100, 2100)])
def test_slivers_are_refused_before_decoding(size: tuple[int, int]) -> None:
    data = png(*size)
    started = time.perf_counter()
    with pytest.raises(errors.Unprocessable) as refused:
        images.prepare(data)
    assert time.perf_counter() - started < 0.2  # decoding the 65000x1 one took 45 s
    assert refused.value.code == "bad_aspect_ratio" and status_of(refused.value) == 422
    assert f"{size[0]}x{size[1]}" in refused.value.message and "Crop" in refused.value.message


@pytest.mark.fast
@pytest.mark.parametrize("size", [(2000, 100), (100, 2000), (20, 1), (1, 1), (3, 7)])
def test_shapes_within_the_limit_are_classified(size: tuple[int, int]) -> None:
    crop = images.prepare(png(*size, mode="RGB"))
    assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8


@pytest.mark.fast
def test_fast_path_stays_within_a_rounding_step_of_the_reference() -> None:
    rng = np.random.default_rng(7)
    source = odd.coffee()
    for _ in range(3):
        w, h = (int(v) for v in rng.integers(60, 900, size=2))
        img = source.resize((w, h), Image.Resampling.BICUBIC)
        for mode in ("RGB", "L", "RGBA", "P"):
            data = odd.encode(img.convert(mode), "PNG")
            fast, exact = images.prepare(data).astype(int), images.prepare(data, exact=True).astype(int)
            assert np.abs(fast - exact).max() <= 8 and np.abs(fast - exact).mean() < 0.6, (w, h, mode)
            if min(w, h) <= 256:  # no larger than needed: the reference pipeline itself
                assert (fast == exact).all()


@pytest.mark.fast
def test_fast_path_is_faster_on_a_typical_photo() -> None:
    img = Image.open(io.BytesIO(photos.data("coffee.png"))).convert("RGB").resize((640, 427))
    data = odd.encode(img, "JPEG", quality=90)
    fast = min(timeit.repeat(lambda: images.prepare(data), number=20, repeat=5))
    exact = min(timeit.repeat(lambda: images.prepare(data, exact=True), number=20, repeat=5))
    assert fast < 0.85 * exact, (fast, exact)


# -- over HTTP, against the classify function's own process ------------------------------------------------------

@pytest.fixture(scope="module")
def bounded_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                models_dir: Path) -> Iterator[Api]:
    """A classify server of its own, so its peak memory is this module's doing."""
    api = make_api(request, tmp_path_factory, "sqlite", MODELS_DIR=str(models_dir))
    yield api
    api.stop()


def peak_rss_mb(pid: int) -> float:
    """The highest VmHWM of a process and its children (gunicorn serves from a forked worker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    peaks = []
    for proc in [pid, *map(int, children)]:
        for line in Path(f"/proc/{proc}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def test_slivers_and_long_images_over_http(bounded_api: Api) -> None:
    user = bounded_api.register()
    url = bounded_api.url("classify", "/classify")
    auth = {"Authorization": f"Bearer {user['api_key']}", "Content-Type": "image/png"}
    assert requests.post(url, data=photos.data("coffee.png"), headers=auth).status_code == 200  # model loaded
    for size in [(65000, 1), (4000, 1)]:
        started = time.monotonic()
        r = requests.post(url, data=png(*size), headers=auth, timeout=30)
        assert time.monotonic() - started < 1.0
        assert r.status_code == 422 and r.json()["error"]["code"] == "bad_aspect_ratio", r.text
    started = time.monotonic()  # 20:1 and 39 million pixels: the widest and largest image accepted
    r = requests.post(url, data=png(28000, 1400), headers=auth, timeout=30)
    assert r.status_code == 200 and time.monotonic() - started < 10.0, r.text  # bounded: ~1 s here
    assert peak_rss_mb(bounded_api.servers["classify"].proc.pid) < PEAK_RSS_MB
    assert bounded_api.balance(user["api_key"]) == 3


@pytest.mark.fast
@pytest.mark.parametrize("data, status, code", [
    (photos.data("grace_hopper.jpg")[:300], 422, "undecodable_image"),  # a JPEG cut inside its header
    (b"GIF89a\xff\xff\xff\xff", 422, "undecodable_image"),  # a GIF header and nothing after
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, 422, "undecodable_image"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", 422, "undecodable_image"),
    (b"BMW is a car, not a bitmap.", 415, "not_an_image"),  # 'BM' alone is no BMP (no DIB header size after it)
    (b"BM" + b"\x00" * 12 + (40).to_bytes(4, "little"), 422, "undecodable_image"),
    (b"\x00\x01\x02\x03 binary", 415, "not_an_image"),
    (b"%PDF-1.7", 415, "not_an_image"),
])
def test_a_damaged_image_is_422_and_a_non_image_415(data: bytes, status: int, code: str) -> None:
    with pytest.raises(errors.AppError) as refused:
        images.prepare(data)
    assert (status_of(refused.value), refused.value.code) == (status, code), refused.value.message
