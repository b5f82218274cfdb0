"""`GET /healthz` on every HTTP function, served by functions-framework: 200 with its checks, or 503 naming the
backend that failed (within HEALTH_TIMEOUT, even when the backend never answers)."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from common.http import health
from infra.processes import free_port
from infra.targets import TARGETS
from tests.conftest import Api, error_of, make_api

HTTP = sorted(name for name, t in TARGETS.items() if t.signature == "http")


def test_every_http_function_declares_what_it_needs() -> None:
    assert set(HTTP) <= set(health.NEEDS)
    for name in HTTP:
        assert ("model" in health.NEEDS[name]) == TARGETS[name].model, name


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, "sqlite", MODELS_DIR=str(models_dir))
    yield api
    api.stop()


@pytest.mark.parametrize("target", HTTP)
def test_healthy(api: Api, target: str) -> None:
    r = requests.get(api.url(target, "/healthz"), timeout=30)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok" and body["function"] == target
    assert set(body["checks"]) == set(health.NEEDS[target])
    assert all(c["ok"] for c in body["checks"].values())
    assert r.headers["Cache-Control"] == "no-store"


def test_health_refuses_other_methods(api: Api) -> None:
    r = requests.post(api.url("tokens", "/healthz"), timeout=30)
    assert error_of(r, 405)["code"] == "method_not_allowed" and r.headers["Allow"] == "GET, HEAD"
    assert requests.head(api.url("tokens", "/healthz"), timeout=30).status_code == 200


def test_a_file_named_healthz_is_still_a_file(api: Api) -> None:
    """Only the function's own /healthz is the check: /files/healthz is the caller's file, behind auth."""
    assert error_of(requests.get(api.url("files_api", "/files/healthz"), timeout=30), 401)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a backend that hangs)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield int(s.getsockname()[1])


def test_unhealthy_backends_are_named(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                                      tmp_path: Path, models_dir: Path, dead_port: int) -> None:
    partial = tmp_path / "models"
    shutil.copytree(models_dir, partial)
    (partial / "efficientnet_lite0_features.tflite").unlink()
    (partial / "efficientnet_lite0.tflite").unlink(missing_ok=True)
    broken = make_api(request, tmp_path_factory, "sqlite", MODELS_DIR=str(partial), STORAGE_BACKEND="s3",
                      BUCKET="nowhere", AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", AWS_ACCESS_KEY_ID="x",
                      AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="us-east-1", HEALTH_TIMEOUT="2",
                      QUEUE_BACKEND="sqs", SQS_QUEUE_URL="")
    hung = make_api(request, tmp_path_factory, "sqlite", STORE_BACKEND="firestore", HEALTH_TIMEOUT="2",
                    FIRESTORE_EMULATOR_HOST=f"127.0.0.1:{dead_port}")
    try:
        r = requests.get(broken.url("sort_job", "/healthz"), timeout=30)
        assert r.status_code == 503, r.text
        checks = r.json()["checks"]
        assert r.json()["status"] == "failing" and checks["store"]["ok"] is True
        assert checks["storage"]["ok"] is False  # refused: "unreachable (...)", or still retrying: "no answer ..."
        assert checks["queue"] == {"ok": False, "error": "SQS_QUEUE_URL is not set", "ms": checks["queue"]["ms"]}
        assert checks["model"]["error"] == "model files missing: efficientnet_lite0_features.tflite"
        assert "127.0.0.1" not in r.text and str(partial) not in r.text  # no detail for the public

        url = hung.url("register", "/healthz")  # started before the clock: only the health check is timed
        started = time.monotonic()
        r = requests.get(url, timeout=30)
        assert time.monotonic() - started < 10
        assert r.status_code == 503 and r.json()["checks"]["store"]["ok"] is False, r.text
    finally:
        broken.stop()
        hung.stop()
