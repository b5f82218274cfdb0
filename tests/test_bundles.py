"""Each bundle runs on its own: a fresh virtual environment with only its requirements, started by
functions-framework from the bundle's folder (the repository is not on sys.path), answering a real request."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import requests

from common.jobqueue import cloudevent_headers
from infra import bundle_check, bundles, photos

HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "numpy", "tf-keras"}
ENV = {"BCRYPT_ROUNDS": "4", "ADMIN_USERNAME": "root", "ADMIN_PASSWORD": "root-password"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("build")
    for target in bundles.TARGETS:
        bundles.build(target, out, models_dir)
    return out


def request_for(target: str, data_dir: Path):  # type: ignore[no-untyped-def]
    root = ("root", "root-password")
    coffee = base64.b64encode(photos.data("coffee.png")).decode()
    if target == "register":
        return lambda url: requests.post(url + "/register", json={"username": "bundle-user", "password": "password1"})
    if target == "tokens":
        return lambda url: requests.get(url + "/tokens", auth=root)
    if target == "classify":
        return lambda url: requests.post(url + "/classify", json={"image": coffee}, auth=root)
    if target == "sort_job":
        return lambda url: requests.post(url + "/jobs", json={"classes": ["food"], "source": "empty/"}, auth=root)
    if target == "sort_worker":
        body = json.dumps({"job_id": "no-such-job", "object": "all/x.png"})
        return lambda url: requests.post(url, data=body, headers=cloudevent_headers())
    (data_dir / "bucket" / "inbox").mkdir(parents=True, exist_ok=True)
    (data_dir / "bucket" / "inbox" / "c.png").write_bytes(photos.data("coffee.png"))
    body = json.dumps({"bucket": "imageclassify-local", "name": "inbox/c.png"})
    return lambda url: requests.post(url, data=body,
                                     headers=cloudevent_headers("google.cloud.storage.object.v1.finalized"))


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(bundles.TARGETS))
def test_bundle_runs_alone(built: Path, target: str, tmp_path: Path) -> None:
    bundle = built / target
    assert (bundle / "common" / "__init__.py").exists() and (built / f"{target}.zip").exists()
    venv = bundle_check.venv_for(bundle / "requirements.txt")
    packages = bundle_check.installed(venv)
    if target in ("register", "tokens"):
        assert not packages & HEAVY, packages & HEAVY
        assert "ai-edge-litert" not in packages and not (bundle / "models").exists()
    else:
        assert "ai-edge-litert" in packages and not packages & {"tensorflow", "tensorflow-cpu", "keras"}
        assert (bundle / "models" / "efficientnet_lite0.tflite").exists()
    server, answer, seconds = bundle_check.start(target, bundle, venv, {**ENV, "DATA_DIR": str(tmp_path)},
                                                 request_for(target, tmp_path))
    try:
        assert answer.status_code in (200, 201, 202), answer.text
        if target == "classify":
            assert answer.json()["predictions"][0]["label"] == "espresso"
        if target == "on_upload":
            labels = json.loads((tmp_path / "bucket" / "labels" / "inbox" / "c.png.json").read_text())
            assert labels["predictions"][0]["label"] == "espresso"
    finally:
        server.stop()
    assert seconds < 30
