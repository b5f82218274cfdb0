"""Request/response behaviour in process: each function's real functions-framework app, no server, no socket.

`functions_framework.create_app(...).test_client()` builds exactly the app a
deployment serves (the module loaded by functions-framework, the guard
installed by `web.endpoint`); only the socket is missing. Seconds for the
whole file: `pytest -m fast`. What needs a real socket (413 before the body
arrives, connection closing, the server's own refusals, timeouts) is in
tests/test_http_limits.py.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import functions_framework
import pytest

from common.jobs import events
from infra.targets import TARGETS
from tests.conftest import configure
from tests.waiting import wait_until

pytestmark = pytest.mark.fast

DEEP = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
JSON_ROUTES = [("register", "/register"), ("tokens", "/refill"), ("classify", "/classify"), ("sort_job", "/jobs")]


@pytest.fixture(scope="module")
def apps() -> dict[str, Any]:
    return {name: functions_framework.create_app(t.name, str(t.source), t.signature) for name, t in TARGETS.items()}


@pytest.fixture
def client(apps: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    configure(monkeypatch, DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "accounts.db"), STORE_BACKEND="sqlite",
              STORAGE_BACKEND="local", BUCKET_DIR=str(tmp_path / "bucket"))
    yield lambda target: apps[target].test_client()


def envelope(r: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.data[:300]
    assert r.headers["Content-Type"] == "application/json"
    error = json.loads(r.data)["error"]
    assert error["status"] == status and error["message"] and (code is None or error["code"] == code), error
    assert "Traceback" not in r.text and "<html" not in r.text.lower()
    secure(r)
    return error


def secure(r: Any) -> None:
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"
    assert "Werkzeug" not in r.headers.get("Server", "")


def test_every_target_has_the_guard(apps: dict[str, Any]) -> None:
    from common.http.guard import GUARDED, Guard

    for name, app in apps.items():
        assert app.extensions.get(GUARDED) and isinstance(app.wsgi_app, Guard), name


def test_werkzeug_and_framework_refusals_become_the_envelope(client: Any) -> None:
    envelope(client("register").get("/robots.txt"), 404, "not_found")
    envelope(client("classify").get("/favicon.ico"), 404, "not_found")
    r = client("sort_worker").get("/")
    assert envelope(r, 405, "method_not_allowed") and r.headers["Allow"] == "POST"
    # a CloudEvent without its required fields: functions-framework's own 400, as the envelope
    envelope(client("sort_worker").post("/", data=b"{}", headers={"Content-Type": "application/json"}), 400)
    r = client("register").get("/register")
    assert envelope(r, 405, "method_not_allowed")["message"].endswith("use POST.") and r.headers["Allow"] == "POST"


@pytest.mark.parametrize("method, path", [("POST", "/jobs/anything/jobs"), ("GET", "/jobs/abc/extra"),
                                          ("GET", "/jobs//abc"), ("DELETE", "/classification-job/a/b"),
                                          ("POST", "/elsewhere")])
def test_job_routes_are_exact(client: Any, method: str, path: str) -> None:
    """A job is created at /jobs and read at /jobs/<id>: longer paths name nothing (one created a job)."""
    envelope(client("sort_job").open(path, method=method, json={"classes": ["dog"], "source": "a/"}), 404)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_body_limits_decided_from_the_headers(client: Any, target: str) -> None:
    app = client(target)
    big = app.post("/", data=b"{}", environ_overrides={"CONTENT_LENGTH": str(5_000_000_000)})
    assert "10485760 bytes" in envelope(big, 413, "payload_too_large")["message"]
    envelope(app.post("/", data=b"{}", environ_overrides={"HTTP_TRANSFER_ENCODING": "chunked"}), 411)
    for bad in ("10, 10", "-1", "+2", "0x10", "２"):
        envelope(app.post("/", data=b"{}", environ_overrides={"CONTENT_LENGTH": bad}), 400, "invalid_content_length")
    envelope(app.get("/", environ_overrides={"SERVER_PROTOCOL": "HTTP/0.9"}), 505)
    envelope(app.get("/x?" + "a" * 9000), 414, "uri_too_long")


@pytest.mark.parametrize("target, path", [*JSON_ROUTES, ("sort_worker", "/"), ("on_upload", "/")])
def test_deeply_nested_json_is_a_400(client: Any, target: str, path: str) -> None:
    for kind in ("application/json", "application/cloudevents+json", ""):
        r = client(target).post(path, data=DEEP, headers={"Content-Type": kind} if kind else {})
        envelope(r, 400, "json_too_deep")
    shallow = b"[" * 32 + b"]" * 32  # within the bound: the function's own answer (functions-framework's
    r = client(target).post(path, data=shallow, headers={"Content-Type": "application/json"})  # for CloudEvents)
    assert envelope(r, r.status_code)["code"] != "json_too_deep"


def test_deep_pubsub_payload_is_dropped_not_a_500(client: Any) -> None:
    inner = base64.b64encode(DEEP).decode()
    event = {"specversion": "1.0", "id": "1", "source": "//pubsub", "type": "google.cloud.pubsub.topic.v1.messagePublished",
             "data": {"message": {"data": inner}}}
    r = client("sort_worker").post("/", data=json.dumps(event), headers={"Content-Type": "application/cloudevents+json"})
    assert r.status_code == 200, r.data  # acknowledged and dropped: redelivering would never succeed


EVENT_TARGETS = sorted(name for name, t in TARGETS.items() if t.signature == "cloudevent")
BINARY_MODE = {"ce-id": "1", "ce-source": "//x", "ce-type": "t", "ce-specversion": "1.0"}


@pytest.mark.parametrize("target", EVENT_TARGETS)
@pytest.mark.parametrize("body, kind", [
    (b"[1, 2]", "application/json"), (b'"x"', "application/json"), (b"7", "application/json"),
    (b"[1, 2]", "application/cloudevents+json"), (b"\xff\xfe", "application/cloudevents+json"),
    (b"\xff", "application/json"), (b"{", "application/json"), (b"", ""), (b'{"context": 5, "data": 1}', "application/json"),
    (b'{"specversion": "9", "id": "1", "source": "s", "type": "t"}', "application/cloudevents+json"),
])
def test_bodies_that_are_no_cloudevent_are_a_400(client: Any, target: str, body: bytes, kind: str) -> None:
    """functions-framework fails on these before the function runs (a 500, and a queue would deliver again)."""
    r = client(target).post("/", data=body, headers={"Content-Type": kind} if kind else {})
    assert "send a JSON object" in envelope(r, 400, "bad_event")["message"]


@pytest.mark.parametrize("target", EVENT_TARGETS)
@pytest.mark.parametrize("data, kind", [(b"[1, 2]", "t"), (b"\xff", "t"), (b'{"message": 5}', events.PUBSUB_TYPE),
                                        (b'{"message": {"data": "!!"}}', events.PUBSUB_TYPE),
                                        (b'{"message": {"data": 5}}', events.PUBSUB_TYPE),
                                        (b'{"message": {"data": null}}', events.PUBSUB_TYPE),
                                        (b'{"message": {"data": "", "attributes": 5}}', events.PUBSUB_TYPE)])
def test_binary_mode_events_with_hostile_data_are_dropped(client: Any, target: str, data: bytes, kind: str) -> None:
    """A real CloudEvent whose data makes no sense: acknowledged and dropped, never retried, nothing done."""
    r = client(target).post("/", data=data, headers={**BINARY_MODE, "ce-type": kind, "Content-Type": "application/json"})
    assert r.status_code == 200, r.data


@pytest.mark.parametrize("header", [
    "Bearer", "Bearer ", "Bearer a b", "Basic", "Basic !!!not-base64!!!", "Basic " + base64.b64encode(b"nocolon").decode(),
    "Basic " + base64.b64encode("bób:pässword".encode("latin-1")).decode(), "Basic " + base64.b64encode(b"\xff\xfe:\x00").decode(),
    "Digest username=x", "   ", "Bearer " + "x" * 5000, "Basic " + "A" * 5000, "icf_just_a_key",
])
def test_malformed_authorization_is_a_401(client: Any, header: str) -> None:
    for target, method, path in (("tokens", "get", "/tokens"), ("register", "post", "/api-key")):
        r = getattr(client(target), method)(path, headers={"Authorization": header})
        assert envelope(r, 401)["code"] in ("unauthorized", "invalid_api_key", "invalid_credentials")


def test_success_replies_carry_the_security_headers(client: Any) -> None:
    r = client("register").post("/register", json={"username": "fasttest", "password": "a long password"})
    assert r.status_code == 201, r.data
    secure(r)
    assert "Access-Control-Allow-Origin" not in r.headers and "Vary" not in r.headers  # no CORS configured


def test_cors_for_configured_origins_only(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CORS_ORIGINS="https://console.example.com, http://localhost:5173/")
    app = client("classify")
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
    ok = app.options("/classify", headers={"Origin": "https://console.example.com", **ask})
    assert ok.status_code == 204 and not ok.data
    assert ok.headers["Access-Control-Allow-Origin"] == "https://console.example.com"
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= {
        h.strip() for h in ok.headers["Access-Control-Allow-Headers"].split(",")}
    assert "POST" in ok.headers["Access-Control-Allow-Methods"] and int(ok.headers["Access-Control-Max-Age"]) > 0
    assert app.options("/classify", headers={"Origin": "http://localhost:5173", **ask}).status_code == 204
    other = app.options("/classify", headers={"Origin": "https://evil.example", **ask})
    assert not any(h.startswith("Access-Control-") for h, _ in other.headers.items())
    assert other.status_code == 405
    reply = app.post("/classify", json={}, headers={"Origin": "https://console.example.com"})
    assert reply.status_code == 400 and reply.headers["Access-Control-Allow-Origin"] == "https://console.example.com"
    assert "Retry-After" in reply.headers["Access-Control-Expose-Headers"] and reply.headers["Vary"] == "Origin"
    foreign = app.post("/classify", json={}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in foreign.headers


LONE_SURROGATES = [b'"\\ud800"', b'"ok\\udfffok"', b'"\xed\xa0\x80"']


@pytest.mark.parametrize("target, path", [*JSON_ROUTES, ("models", "/models"), ("tokens", "/token")])
@pytest.mark.parametrize("text", LONE_SURROGATES)
def test_a_lone_surrogate_is_a_400(client: Any, target: str, path: str, text: bytes) -> None:
    """JSON lets a lone UTF-16 surrogate through; bcrypt, SQLite and storage keys cannot encode one (was a 500)."""
    for field in (b"username", b"password", b"source", b"uri", b"name"):
        body = b'{"username": "alice", "password": "long enough", "classes": ["dog"], "source": "a/", "%s": %s}' % (
            field, text)
        r = client(target).post(path, data=body, headers={"Content-Type": "application/json"})
        message = envelope(r, 400, "invalid_unicode")["message"]
        assert "lone UTF-16 surrogate" in message or "not UTF-8" in message


@pytest.mark.parametrize("target, path", [*JSON_ROUTES, ("tokens", "/token")])
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_json_in_another_encoding_is_a_400(client: Any, target: str, path: str, encoding: str) -> None:
    """Python's parser takes UTF-16/32 (raw surrogates included) where JSON is UTF-8 only (was a 500)."""
    body = '{"username": "alice", "password": "long enough \ud800"}'.encode(encoding, "surrogatepass")
    r = client(target).post(path, data=body, headers={"Content-Type": "application/json"})
    assert envelope(r, 400)["code"] in ("invalid_unicode", "bad_request")


def test_surrogate_pairs_and_escaped_backslashes_are_fine() -> None:
    from common.core.jsonlimits import loads

    assert loads(b'{"a": "\\ud83d\\ude00", "b": "\\\\ud800"}') == {"a": "\U0001f600", "b": "\\ud800"}


def test_json_depth_scan() -> None:
    from common.core.jsonlimits import MAX_DEPTH, too_deep

    assert too_deep(DEEP)
    assert not too_deep(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) and too_deep(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    assert not too_deep(json.dumps({"s": "[[[[{{{{" * 100, "t": "\\\"[[[[" * 50}).encode())  # brackets in strings
    assert not too_deep(b"[" + b"[]," * 10_000 + b"[]]")  # many brackets, shallow
    assert too_deep(b'{"a": "' + b"[" * 1000)  # an unterminated string: refused rather than parsed


@pytest.mark.fast
def test_password_checks_queue_a_little_then_refuse_at_once() -> None:
    """One hash at a time, one waiting; a third caller is refused (503) at once, not after a wait."""
    import threading

    from common.accounts import passwords
    from common.core import errors

    gate = passwords._PasswordGate(running=1, waiting=1)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with gate.enter():
            inside.set()
            release.wait(5)

    def wait_turn(done: list[str]) -> None:
        with gate.enter():
            done.append("ran")

    holder, done = threading.Thread(target=hold), list[str]()
    holder.start()
    inside.wait(5)
    waiter = threading.Thread(target=wait_turn, args=(done,))
    waiter.start()
    wait_until(lambda: gate.waiting >= 1, 10, "the waiter never queued", interval=0.005)  # the next finds it full
    started = time.monotonic()
    with pytest.raises(errors.Unavailable), gate.enter():
        pass
    assert time.monotonic() - started < 1  # not after the holder's 5 s
    release.set()
    holder.join()
    waiter.join()
    assert done == ["ran"]
