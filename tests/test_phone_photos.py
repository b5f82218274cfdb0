"""Phone photos: HEIC (every iPhone) and AVIF are classified like the JPEG of the same photo, stored in `/files`,
sorted by jobs, and bounded like every other format: a hostile one is a 4xx with a message, nothing spent.

Before: both were 415 `not_an_image` everywhere (classify, `/files`, jobs), and bucket objects named .heic or
.avif were skipped by training as "not images".
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from PIL import Image

from common.core import errors
from common.media import images, imagetypes
from common.training.dataset import is_image_key
from tests import images as odd
from tests import phone_files as phone
from tests import test_client as cli
from tests import test_console as web
from tests.conftest import Api, bearer, error_of
from tests.test_client import Stack, stack  # noqa: F401 - the local stack fixture
from tests.test_console import browser, console, hostile_models, page  # noqa: F401 - the console's fixtures
from tests.test_sort_jobs import Backend, backend, wait_done  # noqa: F401 - the fixture, parametrized below

REPO = Path(__file__).resolve().parent.parent
PHOTOS = ["coffee.png", "camera.png", "astronaut.png"]  # a clear top-1 (a close call may flip under any codec)
TIMEOUT = 120


@cache
def encoded(name: str, kind: str) -> bytes:
    """The photo as a JPEG, a HEIC, a HEIC grid of 256x256 tiles (as iPhones tile theirs), or an AVIF."""
    img = phone.photo(name)
    make: dict[str, Callable[[], bytes]] = {"jpeg": lambda: odd.jpeg(img), "heic": lambda: phone.heic(img),
                                            "grid": lambda: phone.heic(img, tile=256), "avif": lambda: phone.avif(img)}
    return make[kind]()


@cache
def hostile() -> dict[str, tuple[bytes, int, str]]:
    """name -> (file, status, code): each refused from its header, before a pixel is decoded."""
    heic, avif, grid = encoded("coffee.png", "heic"), encoded("coffee.png", "avif"), encoded("coffee.png", "grid")
    return {
        "heic-truncated": (heic[:len(heic) // 2], 422, "undecodable_image"),
        "avif-truncated": (avif[:len(avif) // 2], 422, "undecodable_image"),
        "grid-truncated": (grid[:-100], 422, "undecodable_image"),
        "header-only": (heic[:200], 422, "undecodable_image"),
        "heic-claims-100000x100000": (phone.claiming(heic, 100_000, 100_000), 422, "too_many_pixels"),
        "avif-claims-100000x100000": (phone.claiming(avif, 100_000, 100_000), 422, "too_many_pixels"),
        "heic-zero-size": (phone.claiming(heic, 0, 0), 422, "no_pixels"),
        "avif-zero-size": (phone.claiming(avif, 0, 0), 422, "no_pixels"),
        "heic-sliver": (phone.claiming(heic, 30_000, 100), 422, "bad_aspect_ratio"),
        "grid-of-1600-tiles": (phone.grid_heic(40, 40), 422, "too_many_tiles"),
        "tiles-larger-than-the-grid": (phone.grid_heic(2, 2, grid_size=(32, 32)), 422, "undecodable_image"),
        "header-of-100000-boxes": (phone.with_boxes(heic, 100_000), 422, "undecodable_image"),
        "grid-claims-100000x100000": (phone.grid_heic(2, 2, grid_size=(100_000, 100_000)), 422, "too_many_pixels"),
        "grid-size-disagrees": (phone.claiming(phone.grid_heic(2, 2), 256, 256), 422, "undecodable_image"),
        "mp4-video": (phone.mp4(), 415, "not_an_image"),
    }


@pytest.mark.fast
def test_types_are_sniffed_from_the_ftyp_brands() -> None:
    assert imagetypes.media_type(encoded("coffee.png", "heic")) == "image/heic"
    assert imagetypes.media_type(encoded("coffee.png", "avif")) == "image/avif"
    assert imagetypes.media_type(phone.box(b"ftyp", b"mif1\0\0\0\0mif1")) == "image/heif"
    assert imagetypes.media_type(phone.mp4()) is None
    assert all(is_image_key(f"users/a/cats/x.{ext}") for ext in ("heic", "HEIF", "avif"))


@pytest.mark.fast
@pytest.mark.parametrize("name", ["heic-truncated", "avif-truncated", "grid-truncated", "header-only",
                                  "heic-claims-100000x100000", "avif-claims-100000x100000", "heic-zero-size",
                                  "avif-zero-size", "heic-sliver", "grid-of-1600-tiles", "tiles-larger-than-the-grid",
                                  "header-of-100000-boxes", "grid-claims-100000x100000", "grid-size-disagrees",
                                  "mp4-video"])
def test_hostile_phone_files_are_refused(name: str) -> None:
    data, status, code = hostile()[name]
    with pytest.raises(errors.AppError) as refused:
        images.prepare(data)
    assert refused.value.code == code and refused.value.message
    assert "starts like" not in refused.value.message  # refused by our header check, not by libheif or libavif


@pytest.mark.parametrize("name", PHOTOS)
def test_heic_and_avif_classify_like_the_jpeg(lite0, name: str) -> None:
    def top(kind: str) -> str:
        return str(lite0.top(lite0.probabilities(images.prepare(encoded(name, kind))), 1)[0]["label"])

    expected = top("jpeg")
    assert {kind: top(kind) for kind in ("heic", "grid", "avif")} == dict.fromkeys(("heic", "grid", "avif"), expected)


def test_a_rotated_phone_photo_is_turned_upright() -> None:
    """Cameras store the sensor's pixels and a rotation: EXIF orientation (JPEG, AVIF), `irot` (HEIC)."""
    upright, stored = phone.photo("coffee.png"), phone.photo("coffee.png").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    reference = images.prepare(odd.jpeg(upright, quality=95)).astype(int)
    for made in (phone.heic(stored, exif=exif.tobytes()), phone.avif(stored, exif=exif.tobytes())):
        assert np.abs(images.prepare(made).astype(int) - reference).mean() < 4


def test_classify_over_http_and_hostile_files_cost_nothing(strict_api: Api) -> None:
    user = strict_api.user_with(10)
    url = strict_api.url("classify", "/classify")
    for kind, media in (("heic", "image/heic"), ("avif", "image/avif")):
        data = encoded("coffee.png", kind)
        raw = requests.post(url, data=data, headers={**bearer(user), "Content-Type": media}, timeout=TIMEOUT)
        form = requests.post(url, files={"file": (f"IMG_0001.{kind}", data, media)}, headers=bearer(user),
                             timeout=TIMEOUT)
        for r in (raw, form):
            assert r.status_code == 200, r.text
            assert r.json()["predictions"][0]["label"] == "espresso"
    assert strict_api.balance(user["api_key"]) == 6
    for name, (data, status, code) in hostile().items():
        r = requests.post(url, data=data, headers={**bearer(user), "Content-Type": "image/heic"}, timeout=TIMEOUT)
        assert error_of(r, status)["code"] == code, name
    assert strict_api.balance(user["api_key"]) == 6


def test_files_store_phone_photos_with_their_type(strict_api: Api) -> None:
    user = strict_api.register()
    url = strict_api.url("files_api", "/files")
    for kind in ("heic", "avif"):
        data = encoded("coffee.png", kind)
        assert requests.put(f"{url}/phone/IMG.{kind}", data=data, headers=bearer(user), timeout=TIMEOUT).status_code == 201
        got = requests.get(f"{url}/phone/IMG.{kind}", headers=bearer(user), timeout=TIMEOUT)
        assert got.content == data and got.headers["Content-Type"].startswith(f"image/{kind}")
    r = requests.put(f"{url}/phone/clip.mp4", data=phone.mp4(), headers=bearer(user), timeout=TIMEOUT)
    assert "HEIC or AVIF" in error_of(r, 415)["message"]


@pytest.mark.parametrize("backend", ["local"], indirect=True)
def test_a_job_sorts_phone_photos(backend: Backend) -> None:  # noqa: F811 - the imported fixture
    folder, user = f"phone-{uuid.uuid4().hex[:6]}", backend.api.user_with(10)
    for kind in ("heic", "avif"):
        backend.put_in(user, f"{folder}/IMG_0001.{kind}", encoded("coffee.png", kind))
    r = requests.post(backend.api.url("sort_job", "/jobs"), headers=bearer(user),
                      json={"classes": ["food", "cat"], "source": f"{folder}/"}, timeout=TIMEOUT)
    assert r.status_code == 202, r.text
    job = wait_done(backend, r.json()["id"], user)
    assert job["status"] == "done" and job["matched"] == {"food": 2, "cat": 0} and job["failed"] == 0, job
    assert sorted(backend.keys_in(user, "food/")) == [f"food/{folder}/IMG_0001.{k}" for k in ("avif", "heic")]


def test_the_cli_classifies_a_folder_of_phone_photos(tmp_path: Path, stack: Stack) -> None:  # noqa: F811
    env = cli.client_env(tmp_path, stack.url)
    cli.new_user(env)
    folder = tmp_path / "camera roll"
    folder.mkdir()
    (folder / "IMG_0001.HEIC").write_bytes(encoded("coffee.png", "heic"))
    (folder / "IMG_0002.avif").write_bytes(encoded("coffee.png", "avif"))
    reply = cli.run_json(env, "classify", str(folder))
    labels = {Path(r["input"]).name: r["predictions"][0]["label"] for r in reply["results"]}
    assert labels == {"IMG_0001.HEIC": "espresso", "IMG_0002.avif": "espresso"}


def test_the_console_picks_and_classifies_phone_photos(page: Any) -> None:  # noqa: F811
    assert {".heic", ".heif", ".avif"} <= set(page.locator("#files").get_attribute("accept").split(","))
    web.sign_up(page)
    page.set_input_files("#files", files=[{"name": f"IMG_0001.{kind}", "mimeType": f"image/{kind}",
                                           "buffer": encoded("coffee.png", kind)} for kind in ("heic", "avif")])
    cards = {card["name"]: card for card in web.results(page, 2)}
    assert {name: card["bars"][0]["label"] for name, card in cards.items()} == {
        "IMG_0001.heic": "espresso", "IMG_0001.avif": "espresso"}
    # Chromium cannot show a HEIC: its card has no preview rather than a broken one
    web.wait(page, "![...document.querySelectorAll('#results .result')].some((c) => "
                   "c.querySelector('.name').textContent === 'IMG_0001.heic' && c.querySelector('img.preview'))")


def test_pillow_heif_is_imported_on_the_first_heic_only(models_dir: Path) -> None:
    code = ("import sys; from common.models.model import get_model; from infra import photos; "
            "from tests import phone_files as p; m = get_model(); "
            "m.probabilities(m.prepare(photos.data('coffee.png'))); "
            "m.probabilities(m.prepare(p.avif(p.photo('coffee.png')))); print('pillow_heif' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "MODELS_DIR": str(models_dir), "PATH": "/usr/bin:/bin"},
                         timeout=TIMEOUT)
    assert out.stdout.strip().splitlines()[-1] == "False"
