"""EfficientNet-Lite2, the second built-in model, against the real function servers (local stack: SQLite, the
bucket folder, the embedded queue): chosen per classify request, per seed route, per job and as a custom
model's backbone; GET /models lists both built-ins. The Lite2 files are built once per session if missing."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from infra import animals as animal_data
from infra import photos
from tests.animals import png
from tests.conftest import bearer, make_api, new_bucket
from tests.test_sort_jobs import Backend, storage_client, wait_done

LITE2 = "efficientnet_lite2"
TIMEOUT = 60
ANIMALS = ["bear", "bird", "cat", "cow"]


@pytest.fixture(scope="module")
def local(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
          lite2_dir: Path) -> Iterator[Backend]:
    bucket_env = new_bucket("local", request, tmp_path_factory.mktemp("lite2-bucket"))
    api = make_api(request, tmp_path_factory, "sqlite", MODELS_DIR=str(lite2_dir), MODEL_CHUNK_SIZE="16",
                   **bucket_env)
    backend = Backend("local", api, storage_client(bucket_env))
    api.env.update(WORKER_URL=api.url("sort_worker", "/"), DEAD_LETTER_URL=api.url("sort_dead_letter", "/"))
    api.restart("sort_worker")  # started before the URLs were known: now with them
    api.restart("sort_dead_letter")
    yield backend
    api.stop()


def expected_top5(models_dir: Path, name: str) -> list[str]:
    """Lite2's top-5 labels for coffee.png, in this process (what the server must answer)."""
    from common.models.model import get_model

    with pytest.MonkeyPatch.context() as patch:
        from tests.conftest import configure

        configure(patch, MODELS_DIR=str(models_dir))
        model = get_model(LITE2)
        return [p["label"] for p in model.top(model.predict(photos.data(name)), 5)]


def test_classify_with_lite2_gives_its_top5(local: Backend, lite2_dir: Path) -> None:
    user = local.api.user_with(5)
    r = requests.post(local.api.url("classify", "/classify"), headers=bearer(user), timeout=TIMEOUT,
                      files={"file": ("coffee.png", photos.data("coffee.png"), "image/png")}, data={"model": LITE2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == LITE2 and body["predictions"][0]["label"] == "espresso"
    assert [p["label"] for p in body["predictions"]] == expected_top5(lite2_dir, "coffee.png")
    default = requests.post(local.api.url("classify", "/classify"), headers=bearer(user), timeout=TIMEOUT,
                            files={"file": ("coffee.png", photos.data("coffee.png"), "image/png")})
    assert default.status_code == 200 and default.json()["model"] == "efficientnet_lite0", default.text


def test_seed_route_with_lite2(local: Backend) -> None:
    user = local.api.user_with(5)
    r = requests.post(local.api.url("classify", "/predict"), headers=bearer(user), timeout=TIMEOUT,
                      files={"file": ("coffee.png", photos.data("coffee.png"), "image/png")}, data={"model": LITE2})
    assert r.status_code == 200, r.text
    assert r.json()[0]["label"] == "espresso"


def test_models_lists_both_builtins(local: Backend) -> None:
    user = local.api.user_with(1)
    r = requests.get(local.api.url("models", "/models"), headers=bearer(user), timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    builtins = {m["name"]: m["default"] for m in r.json()["models"] if m["builtin"]}
    assert builtins == {"efficientnet_lite0": True, LITE2: False}


def test_a_job_with_lite2(local: Backend) -> None:
    user = local.api.user_with(10)
    folder = f"l2-{uuid.uuid4().hex[:6]}"
    for i in range(2):
        local.put_in(user, f"{folder}/{i}-coffee.png", photos.data("coffee.png"))
        local.put_in(user, f"{folder}/{i}-chelsea.png", photos.data("chelsea.png"))
    r = requests.post(local.api.url("sort_job", "/jobs"), headers=bearer(user), timeout=TIMEOUT,
                      json={"classes": ["food", "cat"], "source": f"{folder}/", "model": LITE2})
    assert r.status_code == 202, r.text
    assert r.json()["model"] == LITE2
    job = wait_done(local, r.json()["id"], user)
    assert job["status"] == "done" and job["matched"] == {"food": 2, "cat": 2}, job
    bad = requests.post(local.api.url("sort_job", "/jobs"), headers=bearer(user), timeout=TIMEOUT,
                        json={"classes": ["dgo"], "source": f"{folder}/", "model": LITE2})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_class", bad.text


def silhouettes() -> dict[str, list[bytes]]:
    images, labels = animal_data.load()
    rng = np.random.default_rng(3)
    return {name: [png(images[i]) for i in rng.choice(
        np.flatnonzero(labels == animal_data.CLASSES.index(name)), 18, replace=False)] for name in ANIMALS}


def wait_model(backend: Backend, user: dict, name: str) -> dict[str, Any]:
    from tests.test_custom_models_api import wait_model as wait

    return wait(backend, user, name)


def test_a_custom_model_on_the_lite2_backbone_trains_and_classifies(local: Backend) -> None:
    user = local.api.user_with(200)
    data = silhouettes()
    for cls, images in data.items():
        for i, image in enumerate(images[:15]):
            local.put_in(user, f"datasets/a/{cls}/{i:02d}.png", image)
    url = local.api.url("models", "/models")
    wrong = requests.post(url, headers=bearer(user), timeout=TIMEOUT,
                          json={"name": "beasts", "source": "datasets/a/", "backbone": "resnet"})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_backbone", wrong.text
    r = requests.post(url, headers=bearer(user), timeout=TIMEOUT,
                      json={"name": "beasts", "source": "datasets/a/", "backbone": LITE2})
    assert r.status_code == 202 and r.json()["backbone"] == LITE2, r.text
    model = wait_model(local, user, "beasts")
    assert model["status"] == "ready" and model["backbone"] == LITE2, model
    files = [{"image": base64.b64encode(data[c][-1]).decode()} for c in ANIMALS]
    classified = requests.post(local.api.url("classify", "/classify"), headers=bearer(user), timeout=TIMEOUT,
                               json={"images": files, "model": "beasts"})
    assert classified.status_code == 200, classified.text
    right = sum(res["predictions"][0]["label"] == cls
                for cls, res in zip(ANIMALS, classified.json()["results"], strict=True))
    assert right >= 3, classified.text
