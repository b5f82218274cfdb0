"""Structured logs, read from what real functions under functions-framework wrote to their output.

Each request carries its own trace id, so its one request line can be found and checked field by field; then
every byte the functions wrote is searched for the secrets and the image bytes the requests carried: none may
appear, on success or on any refusal.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from common.accounts.service import key_hash
from common.adapters.eventpost import post_event
from infra import photos
from tests.conftest import Api, make_api, signed
from tests.waiting import wait_until

PASSWORD = "log-secret-password"
UA = "imageclassify-log-test/1.0"


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, "sqlite", MODELS_DIR=str(models_dir))
    yield api
    api.stop()


def traced(headers: dict[str, str] | None = None, style: str = "w3c") -> tuple[str, dict[str, str]]:
    trace = uuid.uuid4().hex
    header = ({"traceparent": f"00-{trace}-00f067aa0ba902b7-01"} if style == "w3c"
              else {"X-Cloud-Trace-Context": f"{trace}/12345;o=1"})
    return trace, {"User-Agent": UA, **header, **(headers or {})}


def lines(api: Api, *targets: str) -> list[dict[str, Any]]:
    return api.log_lines(*targets)


def request_line(api: Api, target: str, trace: str) -> dict[str, Any]:
    """The one request line of the request that carried `trace` (waited for briefly: it is written as the reply
    leaves)."""
    wanted = f"projects/{api.env['GOOGLE_CLOUD_PROJECT']}/traces/{trace}"
    mine = wait_until(lambda: [e for e in lines(api, target)
                               if e.get("logging.googleapis.com/trace") == wanted and "httpRequest" in e],
                      30, f"no request line with trace {trace} in {api.servers[target].log_path}")
    assert len(mine) == 1, mine
    return mine[0]


def check_line(entry: dict[str, Any], function: str, method: str, path: str, status: int) -> dict[str, Any]:
    http = entry["httpRequest"]
    assert entry["function"] == function
    assert entry["severity"] == ("ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO")
    assert (http["requestMethod"], http["requestUrl"], http["status"]) == (method, path, status)
    assert re.fullmatch(r"\d+\.\d{6}s", http["latency"]) and http["remoteIp"] == "127.0.0.1"
    assert http["userAgent"] == UA
    assert entry["message"] == f"{method} {path} {status}"
    return http


def test_request_lines_carry_the_fields_and_no_secret(api: Api) -> None:
    secrets: list[str] = [PASSWORD]
    name = f"log{uuid.uuid4().hex[:8]}"

    trace, headers = traced()
    r = requests.post(api.url("register", "/register"), json={"username": name, "password": PASSWORD},
                      headers=headers, timeout=30)
    assert r.status_code == 201, r.text
    key = r.json()["api_key"]
    secrets += [key, key_hash(key)]
    check_line(request_line(api, "register", trace), "register", "POST", "/register", 201)

    trace, headers = traced()
    r = requests.post(api.url("register", "/register"), json={"username": name, "password": PASSWORD},
                      headers=headers, timeout=30)
    entry = request_line(api, "register", trace)
    check_line(entry, "register", "POST", "/register", 409)
    assert entry["error"] == r.json()["error"]["code"]

    # Bearer, W3C trace; the key also sent in a query string, which never reaches the line
    trace, headers = traced({"Authorization": f"Bearer {key}"})
    r = requests.get(api.url("tokens", f"/tokens?api_key={key}&password={PASSWORD}"), headers=headers, timeout=30)
    assert r.status_code == 200, r.text
    entry = request_line(api, "tokens", trace)
    check_line(entry, "tokens", "GET", "/tokens", 200)
    assert entry["user"] == name and "tokens" not in entry
    assert entry["logging.googleapis.com/spanId"] == "00f067aa0ba902b7"
    assert entry["logging.googleapis.com/trace_sampled"] is True

    # Basic, Cloud Trace header (decimal span id becomes hex)
    trace, headers = traced(style="cloud")
    r = requests.get(api.url("tokens", "/tokens"), auth=(name, PASSWORD), headers=headers, timeout=30)
    assert r.status_code == 200
    entry = request_line(api, "tokens", trace)
    check_line(entry, "tokens", "GET", "/tokens", 200)
    assert entry["logging.googleapis.com/spanId"] == f"{12345:016x}" and entry["user"] == name

    # wrong Basic password, and the seed's JSON-body password
    trace, headers = traced()
    r = requests.get(api.url("tokens", "/tokens"), auth=(name, PASSWORD + "x"), headers=headers, timeout=30)
    assert r.status_code == 401
    entry = request_line(api, "tokens", trace)
    check_line(entry, "tokens", "GET", "/tokens", 401)
    assert "user" not in entry and entry["error"] == "invalid_credentials"
    secrets.append(PASSWORD + "x")
    trace, headers = traced()
    r = requests.post(api.url("tokens", "/token"), json={"username": name, "password": PASSWORD}, headers=headers,
                      timeout=30)
    assert r.status_code == 200
    check_line(request_line(api, "tokens", trace), "tokens", "POST", "/token", 200)

    # a new key (shown once): in the reply only
    trace, headers = traced()
    r = requests.post(api.url("register", "/api-key"), auth=(name, PASSWORD), headers=headers, timeout=30)
    assert r.status_code == 200
    key = r.json()["api_key"]
    secrets += [key, key_hash(key)]
    check_line(request_line(api, "register", trace), "register", "POST", "/api-key", 200)

    # classify: base64 JSON, multipart upload, an undecodable PNG (charged, then refunded), no credentials
    photo = photos.data("coffee.png")
    posted = base64.b64encode(photo).decode()
    secrets += [posted[:40], posted[1000:1040], "iVBORw0KGgo"]
    auth = {"Authorization": f"Bearer {key}"}
    trace, headers = traced(auth)
    r = requests.post(api.url("classify", "/classify"), json={"image": posted}, headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    entry = request_line(api, "classify", trace)
    check_line(entry, "classify", "POST", "/classify", 200)
    assert entry["images"] == 1 and entry["tokens"] == {"spent": 1, "refunded": 0} and entry["user"] == name
    assert entry["httpRequest"]["requestSize"] == r.request.headers["Content-Length"]

    trace, headers = traced(auth)
    r = requests.post(api.url("classify", "/upload"), files={"image": ("c.png", photo, "image/png")},
                      headers=headers, timeout=60)
    assert r.status_code == 200, r.text
    assert request_line(api, "classify", trace)["tokens"] == {"spent": 1, "refunded": 0}

    fake_png = photo[:4000]  # a PNG cut short: it passes the type check, is charged, fails to decode, is refunded
    secrets.append(base64.b64encode(fake_png).decode()[:40])
    trace, headers = traced(auth)
    r = requests.post(api.url("classify", "/classify"), json={"image": base64.b64encode(fake_png).decode()},
                      headers=headers, timeout=60)
    assert r.status_code == 422, r.text
    entry = request_line(api, "classify", trace)
    check_line(entry, "classify", "POST", "/classify", 422)
    assert entry["images"] == 0 and entry["tokens"] == {"spent": 1, "refunded": 1}

    trace, headers = traced({"Authorization": f"Bearer {key}x"})
    r = requests.post(api.url("classify", "/classify"), data=fake_png, headers={**headers, "Content-Type": "image/png"},
                      timeout=60)
    assert r.status_code == 401
    check_line(request_line(api, "classify", trace), "classify", "POST", "/classify", 401)
    secrets.append(f"{key}x")

    trace, headers = traced({"Authorization": "Basic !!!not-base64"})
    r = requests.post(api.url("classify", "/classify"), json={"image": posted, "password": PASSWORD},
                      headers=headers, timeout=60)
    assert r.status_code == 401
    check_line(request_line(api, "classify", trace), "classify", "POST", "/classify", 401)

    text = "".join(Path(api.servers[t].log_path).read_text(errors="replace") for t in ("register", "tokens",
                                                                                          "classify"))
    for secret in secrets:
        assert secret not in text, f"a secret reached the logs: {secret[:12]}..."
    assert "\\u0089PNG" not in text and "\x89PNG" not in text
    assert "?api_key" not in text and "password=" not in text


def test_a_bad_trace_header_is_ignored(api: Api) -> None:
    agent = f"bad-trace-{uuid.uuid4().hex}"
    r = requests.get(api.url("tokens", "/tokens"), timeout=30, headers={
        "traceparent": '00-zz-{"severity":"EMERGENCY"}', "X-Cloud-Trace-Context": "0" * 32, "User-Agent": agent})
    assert r.status_code == 401
    mine = wait_until(lambda: [e for e in lines(api, "tokens") if e.get("httpRequest", {}).get("userAgent") == agent],
                      30, "no request line for the request")
    assert len(mine) == 1 and "logging.googleapis.com/trace" not in mine[0]
    assert all(e["severity"] != "EMERGENCY" for e in lines(api, "tokens"))


def test_dead_letter_lines(api: Api) -> None:
    job = uuid.uuid4().hex
    status = post_event(api.url("sort_dead_letter"), signed({"job_id": job, "object": "users/x/all/a.jpg"}),
                        timeout=30)
    assert status == 200
    found = wait_until(lambda: [e for e in lines(api, "sort_dead_letter") if e.get("event") == "dead_letter"], 30,
                       "no dead_letter line")
    assert found[0]["severity"] == "WARNING" and found[0]["function"] == "sort_dead_letter"
    assert found[0]["dead_letter"]["job_id"] == job and "sig" not in found[0]["dead_letter"]
    handled = [e for e in lines(api, "sort_dead_letter") if "cloudevent" in e]
    assert handled and handled[-1]["outcome"] == "ok" and handled[-1]["severity"] == "INFO"


def test_every_line_is_json(api: Api) -> None:
    """What the functions themselves print is JSON, line by line (native libraries' own prints aside)."""
    api.url("tokens")
    for target in ("register", "tokens"):
        for raw in Path(api.servers[target].log_path).read_text().splitlines():
            entry = json.loads(raw)
            assert entry["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def test_only_real_dead_letters_count(api: Api) -> None:
    """Junk posted to the dead-letter endpoint (unsigned, forged, not one of our shapes) is logged as refused: the
    log-based metric and alert of monitoring.tf count `event: "dead_letter"` lines, so only real ones may write it."""
    marker = uuid.uuid4().hex
    junk = [{"job_id": marker, "object": "users/x/all/a.jpg"},                       # unsigned
            {"job_id": marker, "object": "users/x/all/a.jpg", "sig": "0" * 64},      # forged
            signed({"job_id": marker}),                                              # signed, no object
            signed({"kind": "fit", "owner": marker}),                                # signed, not a training run
            [marker], marker]
    for message in junk:
        assert post_event(api.url("sort_dead_letter"), message, timeout=30) == 200  # acknowledged: never redeliver
    real = signed({"job_id": marker, "object": "users/x/all/b.jpg"})
    assert post_event(api.url("sort_dead_letter"), real, timeout=30) == 200

    def events(name: str) -> list[dict[str, Any]]:
        return [e for e in lines(api, "sort_dead_letter") if e.get("event") == name
                and marker in json.dumps(e.get("dead_letter", {}))]

    # the real one is posted last: once its line is there, every line before it is too
    wait_until(lambda: events("dead_letter"), 30, "no dead_letter line")
    counted = events("dead_letter")
    assert [e["dead_letter"]["object"] for e in counted] == ["users/x/all/b.jpg"]
    assert len(events("dead_letter_refused")) == 4  # the two non-objects carry no identifiers to match on
