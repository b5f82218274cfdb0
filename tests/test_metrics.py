"""The local stack's /metrics and /healthz, scraped from the real stack after a register, a classify and a job."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from infra import photos
from tests.stack import LocalStack
from tests.waiting import wait_for_status, wait_until


def scrape(stack: LocalStack) -> dict[str, list[Sample]]:
    r = requests.get(stack.url + "/metrics", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(r.text)}


def value(families: dict[str, list[Sample]], family: str, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels` (0 when there is none)."""
    return sum(s.value for s in families.get(family, []) if s.name == sample
               and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_move_with_the_work(tmp_path: Path, models_dir: Path) -> None:
    stack = LocalStack(tmp_path / "data", models_dir, SWEEP_INTERVAL="3600").start()
    try:
        before = scrape(stack)
        assert value(before, "imageclassify_requests", "imageclassify_requests_total") == 0
        user = stack.user("metrics", 10)
        r = requests.post(stack.url + "/classify", headers=user["headers"], timeout=60,
                          files={"file": ("coffee.png", photos.data("coffee.png"), "image/png")})
        assert r.status_code == 200, r.text
        source = tmp_path / "data" / "bucket" / "users" / "metrics" / "all"
        source.mkdir(parents=True)
        for i in range(3):
            shutil.copy(photos.path("coffee.png"), source / f"{i}.png")
        (source / "notes.png").write_bytes(b"not an image at all")  # fails in the worker, refunded
        job = requests.post(stack.url + "/jobs", headers=user["headers"], json={"classes": ["food"]}, timeout=30)
        assert job.status_code == 202, job.text
        status = wait_for_status(lambda: requests.get(f"{stack.url}/jobs/{job.json()['id']}", headers=user["headers"],
                                                      timeout=30).json(), ("done",), 60)
        assert status["matched"] == {"food": 3} and status["failed"] == 1
        assert stack.balance(user) == 10 - 1 - 3

        # the last message is acknowledged (and counted) just after the job it finished is recorded done
        def drained() -> dict[str, list[Sample]] | None:
            after = scrape(stack)
            done = not value(after, "imageclassify_queue_messages", "imageclassify_queue_messages") and \
                value(after, "imageclassify_images_classified", "imageclassify_images_classified_total",
                      via="sort_worker") >= 3
            return after if done else None

        after = wait_until(drained, 30, "the queue never drained")
        total = "imageclassify_requests_total"
        assert value(after, "imageclassify_requests", total, function="register", status="201") == 1
        assert value(after, "imageclassify_requests", total, function="classify", status="200") == 1
        assert value(after, "imageclassify_requests", total, function="sort_job", status="202") == 1
        assert value(after, "imageclassify_requests", total, function="tokens", status="200") >= 2
        assert value(after, "imageclassify_request_duration_seconds", "imageclassify_request_duration_seconds_count",
                     function="classify") == 1
        assert value(after, "imageclassify_request_duration_seconds", "imageclassify_request_duration_seconds_bucket",
                     function="classify", le="+Inf") == 1
        images = "imageclassify_images_classified_total"
        assert value(after, "imageclassify_images_classified", images, via="classify") == 1
        assert value(after, "imageclassify_images_classified", images, via="sort_worker") == 3
        # 1 classify + a job of 4 reserved; the unreadable one refunded (the refill is not a spend)
        assert value(after, "imageclassify_tokens_spent", "imageclassify_tokens_spent_total") == 5
        assert value(after, "imageclassify_tokens_refunded", "imageclassify_tokens_refunded_total") == 1
        assert value(after, "imageclassify_job_duration_seconds", "imageclassify_job_duration_seconds_count",
                     status="done") == 1
        assert value(after, "imageclassify_model_load_seconds", "imageclassify_model_load_seconds_count",
                     model="efficientnet_lite0") == 1
        assert value(after, "imageclassify_queue_messages", "imageclassify_queue_messages") == 0
        assert value(after, "imageclassify_queue_dead_letters", "imageclassify_queue_dead_letters") == 0
        # the four messages as CloudEvents: one each, or fewer when the embedded queue posted them as a batch
        assert 1 <= value(after, "imageclassify_events", "imageclassify_events_total", function="sort_worker",
                          outcome="ok") <= 4

        health = requests.get(stack.url + "/healthz", timeout=30)
        assert health.status_code == 200, health.text
        assert set(health.json()["checks"]) == {"store", "storage", "queue", "model", "disk"}
        assert health.json()["checks"]["queue"]["messages"] == 0
    finally:
        stack.stop()


@pytest.mark.parametrize("missing", ["efficientnet_lite0.head.npz"])
def test_stack_health_says_what_is_missing(tmp_path: Path, models_dir: Path, missing: str) -> None:
    """A stack without its model files answers 503 on /healthz, naming them (and still serves the rest)."""
    partial = tmp_path / "models"
    shutil.copytree(models_dir, partial)
    (partial / missing).unlink()
    (partial / "efficientnet_lite0.tflite").unlink(missing_ok=True)
    stack = LocalStack(tmp_path / "data", partial)
    assert stack.proc is None
    with pytest.raises(RuntimeError, match="did not start"):
        stack.start(timeout=8)  # its readiness is /healthz == 200
    try:
        r = requests.get(stack.url + "/healthz", timeout=30)
        assert r.status_code == 503
        assert r.json()["checks"]["model"] == {"ok": False, "error": f"model files missing: {missing}",
                                               "ms": r.json()["checks"]["model"]["ms"]}
        assert r.json()["checks"]["store"]["ok"] is True
        assert requests.post(stack.url + "/register", json={"username": "still", "password": "a long password"},
                             timeout=30).status_code == 201
    finally:
        stack.stop()
