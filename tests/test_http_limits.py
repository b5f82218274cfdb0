"""Limits and refusals over real sockets: every function under functions-framework, and the local stack's server.

Raw sockets, because the point is what happens before and around the app: a
413 while the client is still sending, a connection that closes, the server's
own refusals, slow clients and slow remotes.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra import processes
from infra.targets import TARGETS
from tests.conftest import REPO, Api, make_api

MiB = 1024 * 1024
DEEP = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
HTTP_TARGETS = sorted(name for name, t in TARGETS.items() if t.signature == "http")


def exchange(port: int, data: bytes, wait: float = 5.0) -> tuple[bytes, float, bool]:
    """Send `data`, read until the server closes: (reply, seconds until the reply began, closed within `wait`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        started = time.monotonic()
        sock.sendall(data)
        reply, first = b"", None
        deadline = started + wait
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return reply, (first or wait), False
            except ConnectionResetError:
                return reply, (first or time.monotonic() - started), True
            if not chunk:
                return reply, (first or time.monotonic() - started), True
            first = first or time.monotonic() - started
            reply += chunk
        return reply, (first or wait), False


def parse(reply: bytes) -> tuple[int, dict[str, str], dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    status = int(lines[0].split(" ")[1])
    return status, headers, json.loads(body[: int(headers.get("content-length", len(body)))])


def refused(reply: bytes, status: int, code: str | None = None) -> dict[str, str]:
    got, headers, body = parse(reply)
    assert got == status, reply[:400]
    error = body["error"]
    assert error["status"] == status and error["message"] and (code is None or error["code"] == code), error
    assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store" and "/" not in headers.get("server", "")  # no version
    return headers


def post(path: str, headers: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n".encode() + body


# -- every function under functions-framework ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, "sqlite", FETCH_ALLOW_LOOPBACK="1", FETCH_DEADLINE="3",
                   MODELS_DIR=str(models_dir), CORS_ORIGINS="https://console.example.com")
    yield api
    api.stop()


def port_of(api: Api, target: str) -> int:
    """The port of a function that has answered once (its worker is up, not only its socket)."""
    requests.get(api.url(target, "/"), timeout=60)
    return api.servers[target].port


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_oversized_body_is_refused_before_it_is_read(api: Api, target: str) -> None:
    port = port_of(api, target)
    big = post("/", f"Content-Type: image/png\r\nContent-Length: {500 * MiB}\r\n", b"x" * 1024)
    # an answer at all proves the body was never read: 1 KiB of the 500 MiB it announces ever comes
    reply, _, closed = exchange(port, big, wait=10)
    assert closed
    refused(reply, 413, "payload_too_large")
    reply, _, closed = exchange(port, post("/", "Content-Length: 5000000000\r\n", b"0123456789"), wait=10)
    assert closed
    refused(reply, 413)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_framing_and_server_refusals_are_the_envelope(api: Api, target: str) -> None:
    port = port_of(api, target)
    refused(exchange(port, post("/", "Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n"))[0], 411)
    refused(exchange(port, post("/", "Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"))[0], 400)
    refused(exchange(port, post("/", "Content-Length: 2\r\nContent-Length: 3\r\n", b"{}x"))[0], 400)
    refused(exchange(port, post("/", "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"{}"))[0], 400)
    refused(exchange(port, b"GET /\r\n")[0], 400)  # HTTP/0.9: gunicorn's own refusal
    refused(exchange(port, b"GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % (b"a" * 9000))[0], 414)
    many = "".join(f"X-H{i}: {'v' * 100}\r\n" for i in range(150))
    refused(exchange(port, f"GET / HTTP/1.1\r\nHost: t\r\n{many}\r\n".encode())[0], 431)
    headers = refused(exchange(port, b"GET / HTTP/1.1\r\nHost: <script>\r\nX: \x01\r\n\r\n")[0], 400)
    assert "script" not in json.dumps(headers)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_deep_json_is_a_400(api: Api, target: str) -> None:
    kind = "application/cloudevents+json" if TARGETS[target].signature == "cloudevent" else "application/json"
    reply, _, _ = exchange(port_of(api, target), post(f"/{TARGETS[target].routes[0]}",
                                                    f"Content-Type: {kind}\r\nContent-Length: {len(DEEP)}\r\n", DEEP))
    refused(reply, 400, "json_too_deep")


def test_app_refusals_and_successes_carry_the_headers(api: Api) -> None:
    for target in HTTP_TARGETS:
        r = requests.get(api.url(target, "/robots.txt"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["Cache-Control"] == "no-store"
    r = requests.get(api.url("sort_worker", "/"))
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed" and r.headers["Allow"] == "POST"
    ok = requests.post(api.url("register", "/register"), json={"username": "limits-user", "password": "long enough"})
    assert ok.status_code == 201 and ok.headers["X-Content-Type-Options"] == "nosniff"
    assert "/" not in ok.headers.get("Server", "")  # gunicorn names itself without its version


def test_cors_preflight_over_http(api: Api) -> None:
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    ok = requests.options(api.url("classify", "/classify"), headers={"Origin": "https://console.example.com", **ask})
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == "https://console.example.com"
    assert "Idempotency-Key" in ok.headers["Access-Control-Allow-Headers"]
    no = requests.options(api.url("classify", "/classify"), headers={"Origin": "https://evil.example", **ask})
    assert "Access-Control-Allow-Origin" not in no.headers


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers", "/slow"])
def test_fetch_ends_at_the_deadline(api: Api, image_server: str, path: str) -> None:
    user, url = api.register(), api.url("classify", "/classify")  # started before the clock
    started = time.monotonic()
    r = requests.post(url, json={"url": image_server + path},
                      headers={"Authorization": f"Bearer {user['api_key']}"}, timeout=30)
    took = time.monotonic() - started
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout", r.text
    assert 2.5 < took < 8, took  # FETCH_DEADLINE is 3 s (a 10 B/s trickle once held the request 100 s)
    assert api.balance(user["api_key"]) == 5


# -- the local stack's server -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[processes.Server]:
    port = processes.free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "MODELS_DIR": str(models_dir), "BCRYPT_ROUNDS": "4",
           "HTTP_HEADER_TIMEOUT": "2", "HTTP_REQUEST_TIMEOUT": "4", "HTTP_IDLE_TIMEOUT": "3"}
    for name in ("STORE_BACKEND", "STORAGE_BACKEND", "QUEUE_BACKEND", "WORKER_URL", "SQLITE_PATH", "BUCKET_DIR"):
        env.pop(name, None)
    data = tmp_path_factory.mktemp("stack")
    server = processes.Server("localstack", [sys.executable, "-m", "infra.localstack", "--port", str(port),
                                             "--data-dir", str(data)], port, env=env, cwd=REPO,
                              ready=processes.http_ok(f"http://127.0.0.1:{port}/healthz"))
    yield server
    server.proc.send_signal(2)  # Ctrl-C: everything stops, exit code 0
    assert server.proc.wait(timeout=30) == 0
    server.stop()


def test_stack_refusals(stack: processes.Server) -> None:
    port = stack.port
    reply, _, closed = exchange(port, post("/classify", f"Content-Length: {500 * MiB}\r\n", b"x" * 1024), 10)
    assert closed  # answered with the body unread (it never comes)
    refused(reply, 413)
    reply, _, closed = exchange(port, post("/register", "Content-Length: 5000000000\r\n", b"0123456789"), 10)
    assert closed
    refused(reply, 413)
    refused(exchange(port, post("/register", "Transfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n"))[0], 411)
    refused(exchange(port, post("/register", "Content-Length: 2\r\nContent-Length: 2\r\n", b"{}"))[0], 400)
    refused(exchange(port, post("/register", "Content-Length: 2, 3\r\n", b"{}"))[0], 400)
    reply, _, _ = exchange(port, b"GET /healthz\r\n")  # HTTP/0.9: refused as soon as the line is in (not 408)
    refused(reply, 505, "http_version_not_supported")
    refused(exchange(port, b"GET /healthz HTTP/2.0\r\n\r\n")[0], 505)
    refused(exchange(port, b"get /healthz HTTP/1.1\r\nHost: t\r\n\r\n")[0], 400)
    refused(exchange(port, b"GET /register?%s HTTP/1.1\r\nHost: t\r\n\r\n" % (b"a" * 9000))[0], 414)
    refused(exchange(port, b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n\r\n")[0], 431)
    refused(exchange(port, b"GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n")[0], 404, "not_found")
    deep = post("/register", f"Content-Type: application/json\r\nContent-Length: {len(DEEP)}\r\n", DEEP)
    refused(exchange(port, deep)[0], 400, "json_too_deep")
    ok = requests.get(f"{stack.url}/healthz")
    assert ok.status_code == 200 and "Server" not in ok.headers and ok.headers["X-Content-Type-Options"] == "nosniff"
    for page in ("healthz", "metrics"):  # the stack's own pages: GET (and HEAD) on the exact path only
        r = requests.put(f"{stack.url}/{page}", data=b"x")
        assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD" and r.json()["error"]["code"] == \
            "method_not_allowed"
        assert requests.get(f"{stack.url}/{page}/x").status_code == 404
        assert requests.head(f"{stack.url}/{page}").status_code == 200


def read_to_end(sock: socket.socket, deadline: float) -> bytes:
    data = b""
    while True:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # closed by the server: as good as an end of stream here
            return data
        if not chunk:
            return data
        data += chunk


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no Threads line")


def test_stack_slow_clients_hold_no_threads(stack: processes.Server) -> None:
    """1000 sockets sending half a request line: answered 408 after the header timeout; others served meanwhile."""
    before = threads_of(stack.proc.pid)
    sockets = []
    try:
        for _ in range(1000):
            sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
            sock.sendall(b"GET /healthz HT")
            sockets.append(sock)
        started = time.monotonic()
        assert requests.get(f"{stack.url}/healthz", timeout=5).status_code == 200
        assert time.monotonic() - started < 1.9  # not queued behind them (they wait for the 2 s header timeout)
        assert threads_of(stack.proc.pid) <= before + 2
        idle = socket.create_connection(("127.0.0.1", stack.port), timeout=10)  # connected, sends nothing
        sockets.append(idle)
        trickle = socket.create_connection(("127.0.0.1", stack.port), timeout=10)  # headers a byte at a time:
        sockets.append(trickle)  # never idle, yet answered 408 once its headers are 2 s late
        trickle_started = time.monotonic()
        for byte in b"GET /healthz HTTP/1.1\r\nX: " + b"a" * 100:
            trickle.sendall(bytes([byte]))
            if time.monotonic() - trickle_started > 1.8:
                break
            time.sleep(0.1)
        # Every socket ends: answered 408, or closed. The deadline is generous on purpose (a loaded CI machine
        # writes 1000 refusals slowly); without the timeouts these sockets would stay open for ever, and
        # read_to_end raises socket.timeout at the deadline.
        deadline = time.monotonic() + 30
        answered = 0
        for sock in sockets[:1000] + [trickle]:
            reply = read_to_end(sock, deadline)
            if reply:
                assert re.match(rb"HTTP/1\.[01] 408 ", reply), reply[:300]
                head, _, body = reply.partition(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if length and len(body) >= int(length.group(1)):  # whole (a loaded machine may cut a reply short)
                    refused(reply, 408, "request_timeout")
                    answered += 1
        assert answered >= 500  # the rest were closed at their timeout without the 408 (a loaded machine)
        idle.settimeout(max(0.1, deadline - time.monotonic()))
        assert idle.recv(10) == b""  # closed after HTTP_IDLE_TIMEOUT
    finally:
        for sock in sockets:
            sock.close()


# -- Expect: 100-continue, many-part forms, slow and stalled bodies ------------------------------------------------

def expect_continue_past_the_limit(port: int, path: str) -> None:
    """A client that asks before sending 5 GB is told 413 at once: never `100 Continue` (an invitation to send)."""
    reply, _, closed = exchange(port, post(path, "Content-Type: image/png\r\nContent-Length: 5000000000\r\n"
                                                 "Expect: 100-continue\r\n"), wait=10)
    assert closed and b"100 Continue" not in reply, reply[:200]
    refused(reply, 413, "payload_too_large")


def many_parts(count: int) -> bytes:
    fields = "".join(f'--b0undary\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n' for i in range(count))
    body = (fields + "--b0undary--\r\n").encode()
    return post("/classify", f"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {len(body)}\r\n",
                body)


@pytest.mark.parametrize("target", ["classify", "files_api"])
def test_expect_continue_past_the_limit_is_413_at_once(api: Api, target: str) -> None:
    expect_continue_past_the_limit(port_of(api, target), f"/{TARGETS[target].routes[0]}")


def test_a_form_of_too_many_parts_has_its_own_refusal(api: Api) -> None:
    reply, _, _ = exchange(port_of(api, "classify"), many_parts(1001))
    refused(reply, 400, "too_many_parts")
    assert b"1,001 parts" in reply


def test_stack_expect_continue_and_many_parts(stack: processes.Server) -> None:
    expect_continue_past_the_limit(stack.port, "/classify")
    reply, _, _ = exchange(stack.port, many_parts(1001))
    refused(reply, 400, "too_many_parts")
    assert b"1,001 parts" in reply


@pytest.fixture(scope="module")
def patient_stack(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[processes.Server]:
    """A stack whose whole-request deadline is long (60 s, the default): a body is bounded by its own deadline."""
    port = processes.free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "MODELS_DIR": str(models_dir), "BCRYPT_ROUNDS": "4",
           "HTTP_HEADER_TIMEOUT": "2", "HTTP_REQUEST_TIMEOUT": "60", "HTTP_IDLE_TIMEOUT": "5"}
    for name in ("STORE_BACKEND", "STORAGE_BACKEND", "QUEUE_BACKEND", "WORKER_URL", "SQLITE_PATH", "BUCKET_DIR"):
        env.pop(name, None)
    server = processes.Server("localstack", [sys.executable, "-m", "infra.localstack", "--port", str(port),
                                             "--data-dir", str(tmp_path_factory.mktemp("patient"))], port, env=env,
                              cwd=REPO, ready=processes.http_ok(f"http://127.0.0.1:{port}/healthz"))
    yield server
    server.stop()


def test_stack_a_dripping_body_is_408_by_its_own_deadline(patient_stack: processes.Server) -> None:
    """Before: a body sent a byte at a time held its socket until the 60 s request deadline (and 40 s in a probe).
    Now a 100-byte body has its header timeout plus a moment: 408 with the envelope within seconds."""
    with socket.create_connection(("127.0.0.1", patient_stack.port), timeout=30) as sock:
        sock.sendall(post("/register", "Content-Type: application/json\r\nContent-Length: 100\r\n"))
        started, reply = time.monotonic(), b""
        sock.settimeout(0.5)
        while time.monotonic() - started < 25 and not reply:  # a byte every half second, reading in between
            try:
                sock.sendall(b" ")
                reply = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # the server closed after its reply: read what it sent
                break
        reply += read_to_end(sock, time.monotonic() + 5)
    assert reply, "no reply within 25 s: the drip was not bounded"
    refused(reply, 408, "request_timeout")


def test_stack_a_stalled_body_is_408_not_a_silent_close(patient_stack: processes.Server) -> None:
    """Before: a body that stopped coming was closed at the idle timeout with no reply at all."""
    with socket.create_connection(("127.0.0.1", patient_stack.port), timeout=30) as sock:
        sock.sendall(post("/register", f"Content-Type: application/json\r\nContent-Length: {9 * MiB}\r\n", b"{"))
        reply = read_to_end(sock, time.monotonic() + 30)
    refused(reply, 408, "request_timeout")


def test_a_form_field_too_large_says_so(api: Api) -> None:
    """A 600 KB text field (a base64 image in a form field) within the body limit: not 'body too large'."""
    body = b'--b0undary\r\nContent-Disposition: form-data; name="image"\r\n\r\n' + b"A" * 600_000 + b"\r\n--b0undary--\r\n"
    reply, _, _ = exchange(port_of(api, "classify"), post(
        "/classify", f"Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {len(body)}\r\n", body))
    refused(reply, 413, "form_field_too_large")
