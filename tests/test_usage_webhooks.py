"""The usage history and the jobs' and trainings' webhooks, against a real local stack.

Usage: the sums are exact after classifies, a job and their refunds, another account's are never seen, bad
queries are 400s. Webhooks: a receiver on 127.0.0.1 gets a signed event it can verify; one that is down is
retried on the (shortened) schedule and then recorded failed; one that redirects is not followed; a malformed
URL is a 400 before anything is spent; another account's deliveries are 404s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from infra import photos
from infra.processes import free_port
from tests import images as odd
from tests.stack import LocalStack
from tests.test_openapi import check
from tests.waiting import HTTP_TIMEOUT, wait_until

BACKOFF = (0.3, 0.3)  # two retries after the first attempt: three attempts in all


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[LocalStack]:
    data = tmp_path_factory.mktemp("usage-hooks")
    server = LocalStack(data, models_dir, None, FETCH_ALLOW_LOOPBACK="1", SWEEP_INTERVAL="0.5",
                        WEBHOOK_BACKOFF=",".join(map(str, BACKOFF)), WEBHOOK_TIMEOUT="5",
                        MODEL_CHUNK_SIZE="8").start()
    server.data = data  # type: ignore[attr-defined]
    yield server
    server.stop()


class Receiver:
    """A webhook receiver on 127.0.0.1: answers `status` (with `location` for a redirect), keeps what it got."""

    def __init__(self, status: int = 200, location: str = "") -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                outer.got.append((dict(self.headers), body))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def user(stack: LocalStack, tokens: int = 40) -> dict[str, Any]:
    return stack.user(f"u{uuid.uuid4().hex[:10]}", tokens)


def put_images(stack: LocalStack, owner: dict[str, Any], folder: str, good: int, bad: int) -> None:
    space = Path(stack.data) / "bucket" / "users" / owner["username"] / folder  # type: ignore[attr-defined]
    space.mkdir(parents=True, exist_ok=True)
    for i in range(good):
        shutil.copy(photos.path("coffee.png"), space / f"{i}.png")
    for i in range(bad):
        (space / f"bad{i}.png").write_bytes(b"not an image")


def get(stack: LocalStack, owner: dict[str, Any], path: str) -> requests.Response:
    return requests.get(stack.url + path, headers=owner["headers"], timeout=HTTP_TIMEOUT)


def usage(stack: LocalStack, owner: dict[str, Any], query: str = "") -> dict[str, Any]:
    r = get(stack, owner, "/usage" + query)
    return dict(check(r, "/usage", "GET"))


def deliveries(stack: LocalStack, owner: dict[str, Any]) -> list[dict[str, Any]]:
    return list(check(get(stack, owner, "/webhooks/deliveries"), "/webhooks/deliveries", "GET")["deliveries"])


def final_delivery(stack: LocalStack, owner: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
    """The account's one delivery once it is delivered or failed."""
    def done() -> dict[str, Any] | None:
        found = deliveries(stack, owner)
        return found[0] if found and found[0]["status"] != "pending" else None

    return wait_until(done, timeout, lambda: deliveries(stack, owner))


def start_job(stack: LocalStack, owner: dict[str, Any], **extra: Any) -> requests.Response:
    return requests.post(stack.url + "/jobs", headers=owner["headers"], timeout=HTTP_TIMEOUT,
                         json={"classes": ["food"], "source": "all/", **extra})


def test_usage_sums_are_exact_after_classifies_a_job_and_refunds(stack: LocalStack) -> None:
    alice, bob = user(stack), user(stack)
    before = stack.balance(alice)
    b64 = [base64.b64encode(data).decode() for data in (photos.data("coffee.png"), odd.truncated_jpeg())]
    r = requests.post(stack.url + "/classify", headers=alice["headers"], timeout=HTTP_TIMEOUT,
                      json={"images": [{"image": b64[0]}, {"image": b64[0]}, {"image": b64[1]}]})
    assert r.status_code == 200, r.text  # three charged, the truncated one refunded
    put_images(stack, alice, "all", good=3, bad=1)
    job = start_job(stack, alice)
    assert job.status_code == 202, job.text
    assert stack.wait_job(alice, job.json()["id"])["failed"] == 1  # four charged, the bad one refunded
    by_kind = {row["kind"]: row for row in usage(stack, alice, "?group=kind")["usage"]}
    assert by_kind["classify"] == {"kind": "classify", "spent": 3, "refunded": 1, "net": 2, "images": 2}
    assert by_kind["job"] == {"kind": "job", "spent": 4, "refunded": 1, "net": 3, "images": 3}
    assert by_kind["training"]["spent"] == 0
    assert before - stack.balance(alice) == 5
    today = time.strftime("%Y-%m-%d", time.gmtime())
    by_day = usage(stack, alice, f"?from={today}&to={today}")
    assert by_day["usage"] == [{"day": today, "spent": 7, "refunded": 2, "net": 5, "images": 5}]
    month = usage(stack, alice)["usage"]
    assert len(month) == 30 and month[-1]["day"] == today and sum(row["net"] for row in month) == 5
    by_key = usage(stack, alice, "?group=key")["usage"]
    assert len(by_key) == 1 and by_key[0]["net"] == 5 and len(by_key[0]["key"]) == 16  # the API key's public id
    csv = get(stack, alice, "/usage.csv?group=kind")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")
    assert csv.text.splitlines() == ["kind,spent,refunded,net,images", "classify,3,1,2,2", "job,4,1,3,3",
                                     "training,0,0,0,0"]
    # another account's spends are never counted: bob spent nothing
    assert all(row["spent"] == 0 for row in usage(stack, bob, "?group=kind")["usage"])
    assert usage(stack, bob, "?group=key")["usage"] == []


@pytest.mark.parametrize(("query", "code"), [
    ("?from=2026-13-01", "invalid_date"), ("?to=yesterday", "invalid_date"), ("?from=2026-1-1", "invalid_date"),
    ("?from=2026-02-01&to=2026-01-01", "invalid_date"), ("?from=2024-01-01&to=2026-01-01", "usage_range_too_large"),
    ("?group=user", "invalid_group"), ("?from=" + "9" * 5000, "invalid_date")])
def test_bad_usage_queries_are_400s(stack: LocalStack, query: str, code: str) -> None:
    owner = user(stack, 5)
    for path in ("/usage", "/usage.csv"):
        r = get(stack, owner, path + query)
        assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text
        check(r, path, "GET")
    assert requests.get(stack.url + "/usage", timeout=HTTP_TIMEOUT).status_code == 401


def test_csv_cells_never_start_a_formula() -> None:
    from common.accounts.usage import as_csv

    report = {"group": "key", "usage": [{"key": name, "spent": -1, "refunded": 0, "net": 0, "images": 0}
                                        for name in ("=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "plain")]}
    rows = as_csv(report).splitlines()[1:]
    assert [row.split(",")[0] for row in rows] == ['"\'=HYPERLINK(""x"")"', "'+1", "'-2", "'@SUM(A1)", "plain"]
    assert all(row.split(",")[1] == "'-1" for row in rows)


def verify(secret: str, header: str, body: bytes) -> bool:
    """The receiver's check, written from the README's recipe (not the product's code)."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


def test_a_finished_job_posts_a_signed_event(stack: LocalStack, receivers: list[Receiver]) -> None:
    receiver = Receiver()
    receivers.append(receiver)
    alice, mallory = user(stack), user(stack)
    put_images(stack, alice, "all", good=2, bad=0)
    job = start_job(stack, alice, webhook=receiver.url)
    assert job.status_code == 202, job.text
    final = final_delivery(stack, alice)
    assert final["status"] == "delivered" and final["attempts"] == 1 and final["last_status"] == 200
    headers, body = receiver.got[0]
    secret = check(get(stack, alice, "/webhooks/secret"), "/webhooks/secret", "GET")["secret"]
    assert verify(secret, headers["ImageClassify-Signature"], body)
    event = json.loads(body)
    assert event["type"] == "job.finished" and event["id"] == job.json()["id"] and event["status"] == "done"
    assert event["event_id"] == final["id"] == headers["ImageClassify-Event-Id"] and final["object"] == event["id"]
    assert check(get(stack, alice, f"/webhooks/deliveries/{final['id']}"), "/webhooks/deliveries/{id}",
                 "GET")["status"] == "delivered"
    # another account sees none of it
    assert deliveries(stack, mallory) == []
    other = get(stack, mallory, f"/webhooks/deliveries/{final['id']}")
    assert other.status_code == 404 and other.json()["error"]["code"] == "unknown_delivery"
    assert check(get(stack, mallory, "/webhooks/secret"), "/webhooks/secret", "GET")["secret"] != secret
    # a rotated secret signs from now on; the old one no longer verifies
    rotated = requests.post(stack.url + "/webhooks/secret", headers=alice["headers"], timeout=HTTP_TIMEOUT)
    new_secret = check(rotated, "/webhooks/secret", "POST")["secret"]
    assert new_secret != secret and get(stack, alice, "/webhooks/secret").json()["secret"] == new_secret
    assert not verify(new_secret, headers["ImageClassify-Signature"], body)


def test_a_receiver_that_is_down_is_retried_then_recorded_failed(stack: LocalStack,
                                                                 receivers: list[Receiver]) -> None:
    receiver = Receiver(status=503)
    receivers.append(receiver)
    owner = user(stack)
    put_images(stack, owner, "all", good=1, bad=0)
    assert start_job(stack, owner, webhook=receiver.url).status_code == 202
    final = final_delivery(stack, owner)
    assert final["status"] == "failed" and final["attempts"] == len(BACKOFF) + 1 == len(receiver.got)
    assert final["last_status"] == 503 and "503" in final["last_error"] and final["next_attempt"] is None
    assert len({body for _, body in receiver.got}) == 1  # every attempt sends the same event


def test_a_closed_port_is_retried_then_recorded_failed(stack: LocalStack) -> None:
    owner = user(stack)
    put_images(stack, owner, "all", good=1, bad=0)
    assert start_job(stack, owner, webhook=f"http://127.0.0.1:{free_port()}/hook").status_code == 202
    final = final_delivery(stack, owner)
    assert final["status"] == "failed" and final["attempts"] == len(BACKOFF) + 1
    assert final["last_status"] is None and "could not be reached" in final["last_error"]


@pytest.mark.parametrize("location", ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/hook", "local"])
def test_a_redirect_is_never_followed(stack: LocalStack, receivers: list[Receiver], location: str) -> None:
    inside = Receiver()  # stands for an address inside our network (loopback is allowed in this stack)
    redirecting = Receiver(status=302, location=inside.url if location == "local" else location)
    receivers.extend([inside, redirecting])
    owner = user(stack)
    put_images(stack, owner, "all", good=1, bad=0)
    assert start_job(stack, owner, webhook=redirecting.url).status_code == 202
    final = final_delivery(stack, owner)
    assert final["status"] == "failed" and "do not follow redirects" in final["last_error"]
    assert final["last_status"] == 302 and len(redirecting.got) == len(BACKOFF) + 1
    assert inside.got == []  # the delivery is final: nothing more will be sent anywhere


@pytest.mark.parametrize("webhook", [
    "ftp://example.com/hook", "not a url", "https://", "https://10.0.0.1/hook", "https://169.254.169.254/x",
    "https://metadata.google.internal/x", "https://user:pw@example.com/x", "http://example.com/hook",
    "https://[::1]:99999/x", "https://exa mple.com/", 123, "", "https://example.com/" + "a" * 3000,
    "https://[::ffff:10.0.0.1]/x"])
def test_a_malformed_webhook_is_a_400_before_anything_is_spent(stack: LocalStack, webhook: Any) -> None:
    owner = user(stack, 10)
    put_images(stack, owner, "all", good=1, bad=0)
    put_images(stack, owner, "pets/cat", good=1, bad=0)
    put_images(stack, owner, "pets/dog", good=1, bad=0)
    for path, body in (("/jobs", {"classes": ["food"], "webhook": webhook}),
                       ("/models", {"name": "pets", "source": "pets/", "webhook": webhook})):
        r = requests.post(stack.url + path, headers=owner["headers"], json=body, timeout=HTTP_TIMEOUT)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_webhook", r.text
    assert stack.balance(owner) == 10


def test_a_failed_training_run_posts_its_end(stack: LocalStack, receivers: list[Receiver]) -> None:
    receiver = Receiver()
    receivers.append(receiver)
    owner = user(stack)
    put_images(stack, owner, "pets/cat", good=0, bad=5)
    put_images(stack, owner, "pets/dog", good=0, bad=5)
    r = requests.post(stack.url + "/models", headers=owner["headers"], timeout=HTTP_TIMEOUT,
                      json={"name": "pets", "source": "pets/", "webhook": receiver.url})
    assert r.status_code == 202, r.text
    final = final_delivery(stack, owner)
    assert final["status"] == "delivered" and final["type"] == "model.finished" and final["object"] == "pets"
    event = json.loads(receiver.got[0][1])
    assert event["status"] == "failed" and event["id"] == "pets" and "error" in event
    assert {row["kind"]: row["net"] for row in usage(stack, owner, "?group=kind")["usage"]}["training"] == 0
