"""Custom models end to end on each backend set, with the functions under functions-framework: train on
animal-mnist silhouettes from a user's space, poll, inspect, classify and sort with the model, delete it; bad
input; a run whose every image is corrupt; a delete during training; redelivered chunks.

- local: SQLite + bucket folder + the embedded queue
- gcp:   Firestore emulator + fake-gcs-server + Pub/Sub emulator push subscription
- aws:   Firestore emulator + moto S3 + moto SQS through the SQS relay
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from common.adapters.eventpost import post_event
from infra import animals as animal_data
from tests.animals import png
from tests.conftest import bearer, make_api, new_bucket, signed
from tests.test_sort_jobs import Backend, pubsub_subscribe, sqs_queue, storage_client
from tests.waiting import wait_for_status

CLASSES = ["bear", "bird", "cat", "cow"]
PER_CLASS = 15
MAX_IMAGES = 80  # MODEL_MAX_IMAGES for these servers: 81 images stand for 20,001
CORRUPT = b"\x89PNG\r\n\x1a\n" + b"\x00 this is not a picture " * 8


@pytest.fixture(scope="module")
def silhouettes() -> dict[str, list[bytes]]:
    """Per class, 15 training images and 3 more never trained on (for classify and sort)."""
    images, labels = animal_data.load()
    rng = np.random.default_rng(3)
    out = {}
    for name in CLASSES:
        picked = rng.choice(np.flatnonzero(labels == animal_data.CLASSES.index(name)), PER_CLASS + 3, replace=False)
        out[name] = [png(images[i]) for i in picked]
    return out


@pytest.fixture(scope="module", params=["local", "gcp", "aws"])
def deployed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             models_dir: Path) -> Iterator[Backend]:
    from common.adapters.queue import sqs_relay

    name = str(request.param)
    tmp = tmp_path_factory.mktemp(f"models-{name}")
    bucket_env = new_bucket({"local": "local", "gcp": "gcs", "aws": "s3"}[name], request, tmp)
    api = make_api(request, tmp_path_factory, "sqlite" if name == "local" else "firestore",
                   MODELS_DIR=str(models_dir), MODEL_MAX_IMAGES=str(MAX_IMAGES), MODEL_CHUNK_SIZE="16",
                   **bucket_env)
    backend = Backend(name, api, storage_client(bucket_env))
    if name == "local":
        api.env.update(WORKER_URL=api.url("sort_worker", "/"), DEAD_LETTER_URL=api.url("sort_dead_letter", "/"))
        # the worker publishes too (the fit, after the last chunk): restart it so it knows where its queue delivers
        api.restart("sort_worker")
        api.restart("sort_dead_letter")
    elif name == "gcp":
        pubsub = request.getfixturevalue("pubsub_server")
        topic = f"train-{uuid.uuid4().hex[:8]}"
        api.env.update(QUEUE_BACKEND="pubsub", PUBSUB_TOPIC=topic, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{pubsub.port}")
        pubsub_subscribe(pubsub, api.env["GOOGLE_CLOUD_PROJECT"], topic, api.url("sort_worker", "/"))
    else:
        moto = request.getfixturevalue("moto_server")
        sqs, queue_url = sqs_queue(moto, f"train-{uuid.uuid4().hex[:8]}")
        api.env.update(QUEUE_BACKEND="sqs", SQS_QUEUE_URL=queue_url)
        stop = threading.Event()
        threading.Thread(target=sqs_relay.run, args=(queue_url, api.url("sort_worker", "/"), stop, 1, "", sqs),
                         daemon=True).start()
        backend.stops.append(stop)
    for target in ("models", "classify", "sort_job"):
        api.url(target)
    yield backend
    for stop in backend.stops:
        stop.set()
    api.stop()


def records(backend: Backend) -> Any:
    """The store the functions use, opened by the test to read what the API does not show (fit runs)."""
    from common.records.store import Store

    if backend.api.backend == "sqlite":
        from common.adapters.store.sqlite import SqliteDocuments

        return Store(SqliteDocuments(backend.api.env["SQLITE_PATH"]))
    from common.adapters.store.firestore import FirestoreDocuments

    return Store(FirestoreDocuments(backend.api.env["GOOGLE_CLOUD_PROJECT"]))


def models_url(backend: Backend, path: str = "") -> str:
    return backend.api.url("models", "/models" + path)


def train(backend: Backend, user: dict, name: str, source: str, **extra: Any) -> requests.Response:
    return requests.post(models_url(backend), headers=bearer(user), json={"name": name, "source": source, **extra})


def wait_model(backend: Backend, user: dict, name: str, timeout: float = 150) -> dict:
    def model() -> dict:
        r = requests.get(models_url(backend, f"/{name}"), headers=bearer(user))
        assert r.status_code == 200, r.text
        return dict(r.json())

    return wait_for_status(model, ("ready", "failed"), timeout)


def model_files(backend: Backend, user: dict, name: str) -> list[str]:
    return backend.keys(f"models/{user['username']}/{name}/")


def put_dataset(backend: Backend, user: dict, folder: str, silhouettes: dict[str, list[bytes]],
                per_class: int = PER_CLASS) -> None:
    for cls, images in silhouettes.items():
        for i, data in enumerate(images[:per_class]):
            backend.put_in(user, f"{folder}/{cls}/{i:02d}.png", data)


@pytest.fixture(scope="module")
def trained(deployed: Backend, silhouettes: dict[str, list[bytes]]) -> dict[str, Any]:
    """One model trained per backend set on 4 classes x 15 images (+ one corrupt image and one text file)."""
    user, other = deployed.api.user_with(200), deployed.api.user_with(20)
    put_dataset(deployed, user, "datasets/animals", silhouettes)
    deployed.put_in(user, "datasets/animals/bear/broken.png", CORRUPT)  # charged, then refunded
    deployed.put_in(user, "datasets/animals/README.txt", b"not an image, not charged")
    deployed.put_in(user, "datasets/animals/cat/notes.txt", b"not an image either")
    r = train(deployed, user, "animals", "datasets/animals/", augment=2)
    assert r.status_code == 202, r.text
    created = r.json()
    assert r.headers["Location"].endswith("/models/animals")
    assert created["images"] == 4 * PER_CLASS + 1 and created["classes"] == CLASSES
    assert created["status"] == "queued" and created["progress"]["total"] == 61
    assert deployed.api.balance(user["api_key"]) == 200 - 61
    # while it trains: the name is taken, the model cannot serve yet, and nobody else can see it
    again = train(deployed, user, "animals", "datasets/animals/")
    assert again.status_code == 409 and again.json()["error"]["code"] == "model_exists", again.text
    early = requests.post(deployed.api.url("classify", "/classify"), headers=bearer(user),
                          json={"image": base64.b64encode(silhouettes["cat"][-1]).decode(), "model": "animals"})
    assert early.status_code == 409 and early.json()["error"]["code"] == "model_not_ready", early.text
    model = wait_model(deployed, user, "animals")
    assert model["status"] == "ready", model
    return {"user": user, "other": other, "model": model}


def test_model_trains_and_reports_metrics(deployed: Backend, trained: dict[str, Any]) -> None:
    user, model = trained["user"], trained["model"]
    assert model["progress"] == {"done": 61, "total": 61, "percentage": 100.0}
    assert model["failed"] == 1 and model["classes"] == CLASSES
    assert model["split"] == {"train": 45, "validation": 8, "test": 8}
    metrics = model["metrics"]
    assert set(metrics["per_class"]) == set(CLASSES)
    assert metrics["accuracy"] is not None and metrics["accuracy"] >= 0.5, metrics
    assert set(metrics["per_class"]["cat"]) == {"precision", "recall", "f1", "support", "roc_auc"}
    matrix = metrics["confusion_matrix"]
    assert matrix["labels"] == CLASSES and len(matrix["matrix"]) == 4
    assert sum(map(sum, matrix["matrix"])) in (7, 8)  # the test split's images, less the corrupt one if there
    assert deployed.api.balance(user["api_key"]) == 200 - 60  # the corrupt image was refunded
    png_reply = requests.get(models_url(deployed, "/animals/confusion.png"), headers=bearer(user))
    assert png_reply.status_code == 200 and png_reply.headers["Content-Type"] == "image/png"
    assert png_reply.content.startswith(b"\x89PNG\r\n\x1a\n")
    listed = requests.get(models_url(deployed), headers=bearer(user)).json()["models"]
    assert {"name": "efficientnet_lite0", "builtin": True, "status": "ready", "default": True} in listed
    assert [m["backbone"] for m in listed if m["name"] == "animals"] == ["efficientnet_lite0"]  # the default
    assert [m["name"] for m in listed if not m["builtin"]] == ["animals"]
    files = model_files(deployed, user, "animals")
    assert any(k.endswith("/fit-1/head.npz") for k in files) and any(k.endswith("/chunks/3.npz") for k in files)
    assert not [k for k in deployed.keys(f"users/{user['username']}/") if "/fit-" in k]  # outside the space


def test_models_are_private(deployed: Backend, trained: dict[str, Any], silhouettes: dict[str, list[bytes]]) -> None:
    other = trained["other"]
    for path in ("/animals", "/animals/confusion.png"):
        r = requests.get(models_url(deployed, path), headers=bearer(other))
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model", r.text
    assert requests.delete(models_url(deployed, "/animals"), headers=bearer(other)).status_code == 404
    assert [m["name"] for m in requests.get(models_url(deployed), headers=bearer(other)).json()["models"]
            if not m["builtin"]] == []
    image = base64.b64encode(silhouettes["cat"][-1]).decode()
    r = requests.post(deployed.api.url("classify", "/classify"), headers=bearer(other),
                      json={"image": image, "model": "animals"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model", r.text
    r = requests.post(deployed.api.url("sort_job", "/jobs"), headers=bearer(other),
                      json={"model": "animals", "source": "all/"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model", r.text
    assert requests.get(models_url(deployed, "/animals")).status_code == 401
    assert deployed.api.balance(other["api_key"]) == 20


def test_classify_with_the_model(deployed: Backend, trained: dict[str, Any],
                                 silhouettes: dict[str, list[bytes]]) -> None:
    user = trained["user"]
    before = deployed.api.balance(user["api_key"])
    batch = [{"image": base64.b64encode(silhouettes[c][-1]).decode()} for c in CLASSES]
    r = requests.post(deployed.api.url("classify", "/classify"), headers=bearer(user),
                      json={"images": batch, "model": "animals", "top_k": 10})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "animals" and body["tokens_remaining"] == before - 4
    right = 0
    for cls, result in zip(CLASSES, body["results"], strict=True):
        predictions = result["predictions"]
        assert len(predictions) == 4 and {p["label"] for p in predictions} == set(CLASSES)  # top_k capped
        assert abs(sum(p["score"] for p in predictions) - 1.0) < 1e-3
        right += predictions[0]["label"] == cls
    assert right >= 3, body
    scored = requests.post(deployed.api.url("classify", "/classify"), headers=bearer(user),
                           json={"image": batch[2]["image"], "model": "animals", "classes": ["Cat", "dog"]})
    assert scored.status_code == 400 and scored.json()["error"]["code"] == "unknown_class", scored.text
    assert deployed.api.balance(user["api_key"]) == before - 4


def test_sort_a_folder_with_the_model(deployed: Backend, trained: dict[str, Any],
                                      silhouettes: dict[str, list[bytes]]) -> None:
    from tests.test_sort_jobs import wait_done

    user = trained["user"]
    for cls in CLASSES:
        for i, data in enumerate(silhouettes[cls][PER_CLASS:PER_CLASS + 2]):
            deployed.put_in(user, f"tosort/{cls}-{i}.png", data)
    bad = requests.post(deployed.api.url("sort_job", "/jobs"), headers=bearer(user),
                        json={"model": "animals", "classes": ["dog"], "source": "tosort/"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "unknown_class", bad.text
    before = deployed.api.balance(user["api_key"])
    r = requests.post(deployed.api.url("sort_job", "/jobs"), headers=bearer(user),
                      json={"model": "animals", "source": "tosort/", "min_score": 0})
    assert r.status_code == 202, r.text
    assert r.json()["classes"] == CLASSES and r.json()["model"] == "animals"
    job = wait_done(deployed, r.json()["id"], user)
    assert job["status"] == "done" and job["processed"] == 8 and sum(job["matched"].values()) == 8, job
    sorted_keys = [k for cls in CLASSES for k in deployed.keys_in(user, f"{cls}/")]
    assert len(sorted_keys) == 8
    assert all(k.split("/")[1] == "tosort" for k in sorted_keys), sorted_keys  # <class>/<its path in the space>
    assert sum(k.split("/")[0] == k.split("/")[-1].split("-")[0] for k in sorted_keys) >= 5, sorted_keys
    assert deployed.api.balance(user["api_key"]) == before - 8


def test_redelivered_and_forged_messages_change_nothing(deployed: Backend, trained: dict[str, Any]) -> None:
    user = trained["user"]
    store = records(deployed)
    record = store.get_model_record(user["username"], "animals")
    assert record.status == "ready" and record.fit_runs == 1 and record.chunks == 4
    before = deployed.api.balance(user["api_key"])
    worker, dead = deployed.api.url("sort_worker", "/"), deployed.api.url("sort_dead_letter", "/")
    base = {"owner": user["username"], "name": "animals", "version": record.version}
    for chunk in (0, record.fit_chunk, 0, record.fit_chunk):
        assert post_event(worker, signed({**base, "kind": "embed", "chunk": chunk})) == 200
    assert post_event(worker, signed({**base, "kind": "fit"})) == 200
    for url in (worker, dead):  # unsigned, wrongly signed, another version, a chunk that does not exist
        assert post_event(url, {**base, "kind": "fit"}) == 200
        assert post_event(url, {**base, "kind": "fit", "sig": "0" * 64}) == 200
        assert post_event(url, signed({**base, "version": "0" * 32, "kind": "fit"})) == 200
        assert post_event(url, signed({**base, "kind": "embed", "chunk": 99})) == 200
    time.sleep(1)
    after = store.get_model_record(user["username"], "animals")
    assert after.status == "ready" and after.fit_runs == 1 and after.chunks_in == 4 and after.done == 61
    assert after.artefacts == record.artefacts
    assert deployed.api.balance(user["api_key"]) == before
    store.close()


def test_delete_a_ready_model(deployed: Backend, trained: dict[str, Any],
                              silhouettes: dict[str, list[bytes]]) -> None:
    user = trained["user"]
    before = deployed.api.balance(user["api_key"])
    r = requests.delete(models_url(deployed, "/animals"), headers=bearer(user))
    assert r.status_code == 204, r.text
    assert requests.get(models_url(deployed, "/animals"), headers=bearer(user)).status_code == 404
    assert requests.delete(models_url(deployed, "/animals"), headers=bearer(user)).status_code == 404
    assert model_files(deployed, user, "animals") == []
    r = requests.post(deployed.api.url("classify", "/classify"), headers=bearer(user),
                      json={"image": base64.b64encode(silhouettes["cat"][-1]).decode(), "model": "animals"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_model", r.text
    assert deployed.api.balance(user["api_key"]) == before  # a ready model's tokens were spent


def test_every_image_corrupt_fails_and_refunds(deployed: Backend) -> None:
    user = deployed.api.user_with(30)
    for cls in ("a", "b"):
        for i in range(6):
            deployed.put_in(user, f"junk/{cls}/{i}.png", CORRUPT)
    r = train(deployed, user, "junk", "junk/")
    assert r.status_code == 202 and r.json()["images"] == 12, r.text
    assert deployed.api.balance(user["api_key"]) in (18, 30)  # 12 reserved (and refunded once all have failed)
    model = wait_model(deployed, user, "junk")
    assert model["status"] == "failed" and model["failed"] == 12 and "refunded" in model["error"], model
    assert "metrics" not in model
    assert deployed.api.balance(user["api_key"]) == 30
    r = requests.get(models_url(deployed, "/junk/confusion.png"), headers=bearer(user))
    assert r.status_code == 409 and r.json()["error"]["code"] == "model_not_ready"
    assert requests.delete(models_url(deployed, "/junk"), headers=bearer(user)).status_code == 204
    assert deployed.api.balance(user["api_key"]) == 30 and model_files(deployed, user, "junk") == []


def test_the_same_folder_trains_the_same_model_for_anyone(deployed: Backend,
                                                         silhouettes: dict[str, list[bytes]]) -> None:
    """Augmentations are seeded by each image's path in its dataset, not by its owner's name: the same folder,
    uploaded by two users, trains the same model (and a test's accuracy does not hang on a random user name)."""
    models = []
    for _ in range(2):
        user = deployed.api.user_with(20)
        put_dataset(deployed, user, "pets", {c: silhouettes[c] for c in CLASSES[:2]}, per_class=6)
        assert train(deployed, user, "same", "pets/", augment=2).status_code == 202
        models.append(wait_model(deployed, user, "same"))
    assert [m["status"] for m in models] == ["ready", "ready"], models
    scores = [{k: v for k, v in m["metrics"].items() if k != "fit"} for m in models]
    fits = [m["metrics"]["fit"] for m in models]
    assert scores[0] == scores[1] and (fits[0]["l2"], fits[0]["iterations"]) == (fits[1]["l2"], fits[1]["iterations"])
    assert fits[0]["validation_loss"] == pytest.approx(fits[1]["validation_loss"], rel=1e-4), fits  # was 3.27 vs 1e-6


def test_delete_during_training_settles_and_late_messages_change_nothing(
        deployed: Backend, silhouettes: dict[str, list[bytes]]) -> None:
    user = deployed.api.user_with(40)
    put_dataset(deployed, user, "small", {c: silhouettes[c] for c in CLASSES[:2]}, per_class=8)
    assert train(deployed, user, "quick", "small/", augment=0).status_code == 202
    assert requests.get(models_url(deployed, "/quick"), headers=bearer(user)).json()["status"] != "ready"
    assert requests.delete(models_url(deployed, "/quick"), headers=bearer(user)).status_code == 204
    assert deployed.api.balance(user["api_key"]) == 40  # deleted before it was ready: nothing spent
    time.sleep(3)  # the queued chunks arrive, find no model, and leave nothing behind
    assert requests.get(models_url(deployed, "/quick"), headers=bearer(user)).status_code == 404
    assert model_files(deployed, user, "quick") == [] and deployed.api.balance(user["api_key"]) == 40
    # the same name again: a new model that the old one's messages never touch
    assert train(deployed, user, "quick", "small/", augment=0).status_code == 202
    model = wait_model(deployed, user, "quick")
    assert model["status"] == "ready" and model["progress"]["done"] == 16, model
    assert deployed.api.balance(user["api_key"]) == 40 - 16


@pytest.fixture(scope="module")
def bad_input_user(deployed: Backend) -> dict:
    user = deployed.api.user_with(20)
    tiny = png(np.zeros((4, 4)), 8)
    for i in range(5):
        deployed.put_in(user, f"one/only/{i}.png", tiny)
        deployed.put_in(user, f"flat/{i}.png", tiny)
        deployed.put_in(user, f"short/big/{i}.png", tiny)
    for i in range(4):
        deployed.put_in(user, f"short/small/{i}.png", tiny)
    for i in range(MAX_IMAGES + 1):
        deployed.put_in(user, f"many/{'ab'[i % 2]}/{i}.png", tiny)
    return user


@pytest.mark.parametrize("body, code", [
    ({"name": "m1"}, "invalid_source"),
    ({"name": "m1", "source": ""}, "invalid_source"),
    ({"name": "m1", "source": 5}, "invalid_source"),
    ({"name": "m1", "source": "../other/"}, "invalid_source"),
    ({"name": "m1", "source": "missing/"}, "empty_dataset"),
    ({"name": "m1", "source": "flat/"}, "empty_dataset"),
    ({"name": "m1", "source": "one/"}, "too_few_classes"),
    ({"name": "m1", "source": "short/"}, "class_too_small"),
    ({"name": "m1", "source": "many/"}, "too_many_images"),
    ({"name": "a/b", "source": "short/"}, "invalid_name"),
    ({"name": "..", "source": "short/"}, "invalid_name"),
    ({"name": "../x", "source": "short/"}, "invalid_name"),
    ({"name": "Pets", "source": "short/"}, "invalid_name"),
    ({"name": "p", "source": "short/"}, "invalid_name"),
    ({"name": "p" * 41, "source": "short/"}, "invalid_name"),
    ({"name": 7, "source": "short/"}, "invalid_name"),
    ({"source": "short/"}, "invalid_name"),
    ({"name": "efficientnet_lite0", "source": "short/"}, "invalid_name"),
    ({"name": "m1", "source": "short/", "augment": 9}, "bad_augment"),
    ({"name": "m1", "source": "short/", "augment": "2"}, "bad_augment"),
])
def test_bad_training_requests(deployed: Backend, bad_input_user: dict, body: dict, code: str) -> None:
    r = requests.post(models_url(deployed), headers=bearer(bad_input_user), json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
    assert set(r.json()["error"]) >= {"status", "code", "message"}
    if code == "class_too_small":
        assert r.json()["error"]["classes"] == ["small"] and "small (4)" in r.json()["error"]["message"]
    assert deployed.api.balance(bad_input_user["api_key"]) == 20


def test_malformed_requests(deployed: Backend, bad_input_user: dict) -> None:
    headers = bearer(bad_input_user)
    cases = [
        (requests.post(models_url(deployed), headers=headers, data=b"{nope", timeout=10), 400),
        (requests.post(models_url(deployed), headers=headers, json=["a"]), 400),
        (requests.post(models_url(deployed), headers={**headers, "Content-Type": "text/plain"}, data=b"x"), 415),
        (requests.post(models_url(deployed), json={"name": "m1", "source": "short/"}), 401),
        (requests.put(models_url(deployed, "/m1"), headers=headers, json={}), 405),
        (requests.get(models_url(deployed, "/m1/weights.npz"), headers=headers), 404),
        (requests.get(models_url(deployed, "/..%2F..%2Fetc"), headers=headers), 404),
        (requests.get(models_url(deployed, "/a/b/c"), headers=headers), 404),
        (requests.post(models_url(deployed), headers=headers, data=b"x" * (11 * 1024 * 1024),
                       timeout=30), 413),
    ]
    for reply, status in cases:
        assert reply.status_code == status, (status, reply.text)
        assert reply.json()["error"]["status"] == status
    short = deployed.api.user_with(5)
    for i in range(5):
        for cls in ("x", "y"):
            deployed.put_in(short, f"set/{cls}/{i}.png", png(np.zeros((4, 4)), 8))
    r = requests.post(models_url(deployed), headers=bearer(short), json={"name": "m1", "source": "set/"})
    assert r.status_code == 402 and r.json()["error"]["needed"] == 10, r.text
    assert requests.get(models_url(deployed, "/m1"), headers=bearer(short)).status_code == 404


def test_dead_letter_fails_the_run_and_refunds(deployed: Backend, silhouettes: dict[str, list[bytes]]) -> None:
    """A training message that exhausted its deliveries ends the run failed, every token back; the run's
    remaining messages then change nothing."""
    user = deployed.api.user_with(40)
    put_dataset(deployed, user, "dead", {c: silhouettes[c] for c in CLASSES[:2]}, per_class=8)
    assert train(deployed, user, "doomed", "dead/", augment=0).status_code == 202
    record = records(deployed).get_model_record(user["username"], "doomed")
    message = {"kind": "embed", "owner": user["username"], "name": "doomed", "version": record.version, "chunk": 0}
    assert post_event(deployed.api.url("sort_dead_letter", "/"), signed(message)) == 200
    model = wait_model(deployed, user, "doomed")
    assert model["status"] == "failed" and "several attempts" in model["error"], model
    assert deployed.api.balance(user["api_key"]) == 40
    time.sleep(1)
    assert wait_model(deployed, user, "doomed")["status"] == "failed" and deployed.api.balance(user["api_key"]) == 40
