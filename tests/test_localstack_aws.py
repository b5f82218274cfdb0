"""`nox -s serve -- --aws`: the local stack on moto_server's DynamoDB, S3 and SQS (infra/aws_local.py), on the same
port and routes, runs the README's journeys over HTTP: classify, a sort job, upload labelling and a custom model."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from infra import animals as animal_data
from infra import photos
from infra.processes import Server
from tests.animals import png
from tests.localstack_server import ADMIN, register, start

CLASSES = ["bear", "bird", "cat", "cow"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[tuple[Server, Any]]:
    """The stack with --aws, and an S3 client on the moto_server its banner names."""
    import boto3

    server = start(tmp_path_factory.mktemp("aws-stack"), models_dir, "--aws", MODEL_MAX_IMAGES="80",
                   MODEL_CHUNK_SIZE="16")
    try:
        banner = wait(lambda: re.search(r"moto_server (http://127\.0\.0\.1:\d+): DynamoDB table (\S+), S3 bucket "
                                        r"s3://([^/]+)/.*SQS queues", server.log_path.read_text()), 60)
        assert banner, server.log_path.read_text()[-3000:]
        s3 = boto3.client("s3", endpoint_url=banner[1], region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
        s3.bucket = banner[3]
        yield server, s3
    finally:
        server.stop()


def wait(check: Callable[[], Any], timeout: float = 240) -> Any:
    """What `check` finds, once it finds something (or its last answer at the deadline)."""
    deadline = time.monotonic() + timeout
    while not (found := check()) and time.monotonic() < deadline:
        time.sleep(0.3)
    return found


def keys(s3: Any, prefix: str) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", [])]


def refill(base: str, user: dict, amount: int) -> None:
    admin = requests.post(f"{base}/api-key", auth=ADMIN, timeout=30).json()["api_key"]
    r = requests.post(f"{base}/refill", json={"username": user["username"], "amount": amount}, timeout=30,
                      headers={"Authorization": f"Bearer {admin}"})
    assert r.status_code == 200, r.text


def test_classify_sort_and_label_on_aws_services(stack: tuple[Server, Any]) -> None:
    server, s3 = stack
    base, user = server.url, register(server.url, "alice")
    auth = {"Authorization": f"Bearer {user['api_key']}"}
    r = requests.post(f"{base}/classify", headers=auth, files={"file": ("c.png", photos.data("coffee.png"))},
                      timeout=60)
    assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "espresso", r.text
    refill(base, user, 10)
    for i, name in enumerate(["coffee.png", "chelsea.png", "grace_hopper.jpg", "coffee.png"]):
        s3.put_object(Bucket=s3.bucket, Key=f"users/alice/all/{i}-{name}", Body=photos.data(name))
    r = requests.post(f"{base}/jobs", headers=auth, json={"classes": ["food", "cat", "clothing"], "source": "all/"},
                      timeout=30)
    assert r.status_code == 202, r.text
    job = wait(lambda: (s := requests.get(f"{base}/classification-job/{r.json()['id']}", headers=auth,
                                          timeout=30).json())["status"] == "done" and s)
    assert job and job["matched"] == {"food": 2, "cat": 1, "clothing": 1}, job
    assert "users/alice/food/all/0-coffee.png" in keys(s3, "users/alice/food/")
    s3.put_object(Bucket=s3.bucket, Key="inbox/camera.png", Body=photos.data("camera.png"))
    assert wait(lambda: keys(s3, "labels/inbox/camera.png.json")), "S3 -> SQS -> on_upload labelled nothing"
    labels = s3.get_object(Bucket=s3.bucket, Key="labels/inbox/camera.png.json")["Body"].read()
    assert b'"tripod"' in labels
    assert requests.get(f"{base}/_worker", timeout=30).status_code == 404  # internal routes: the stack's own only


def test_a_custom_model_on_aws_services(stack: tuple[Server, Any]) -> None:
    server, s3 = stack
    base, user = server.url, register(server.url, "bob")
    auth = {"Authorization": f"Bearer {user['api_key']}"}
    refill(base, user, 100)
    images, labels = animal_data.load()
    rng = np.random.default_rng(3)
    for name in CLASSES:
        picked = rng.choice(np.flatnonzero(labels == animal_data.CLASSES.index(name)), 12, replace=False)
        for i, index in enumerate(picked):
            s3.put_object(Bucket=s3.bucket, Key=f"users/bob/animals/{name}/{i:02d}.png", Body=png(images[index]))
    r = requests.post(f"{base}/models", headers=auth, json={"name": "animals", "source": "animals/"}, timeout=60)
    assert r.status_code == 202, r.text
    model = wait(lambda: (m := requests.get(f"{base}/models/animals", headers=auth, timeout=30).json())["status"]
                 in ("ready", "failed") and m, 400)
    assert model and model["status"] == "ready", model
    cat = png(images[np.flatnonzero(labels == animal_data.CLASSES.index("cat"))[-1]])
    r = requests.post(f"{base}/classify", headers=auth, files={"file": ("cat.png", cat)}, data={"model": "animals"},
                      timeout=60)
    assert r.status_code == 200 and r.json()["predictions"][0]["label"] in CLASSES, r.text
