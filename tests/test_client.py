"""The `imageclassify` command-line client, run as a user runs it: the installed command in a subprocess.

Against the real local stack (`python -m infra.localstack`) for what the server
already offers: accounts, balance, classify, sort jobs. Against a tiny fake API
on a real loopback socket for what it does not offer yet (`/files`, `/models`,
the `classes` field of `/classify`, `DELETE /jobs/<id>`), so the request shapes
the client sends are pinned until the journey tests replace these.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from infra import photos
from infra.processes import Server, free_port
from tests import localstack_server
from tests.waiting import wait_until

BIN = Path(sys.executable).parent / "imageclassify"
PASSWORD = "a long password"


# -- running the command ------------------------------------------------------------------------

def client_env(tmp_path: Path, api: str, **extra: str) -> dict[str, str]:
    """The user's environment: a private config folder, the API URL, and nothing of the server's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGECLASSIFY_") and k != "PYTHONPATH"}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), IMAGECLASSIFY_API=api, COLUMNS="200", **extra)
    return env


def run(env: dict[str, str], *args: str, stdin: str | None = None, ok: bool | None = True,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run `imageclassify ARGS`; `ok` True/False asserts success/failure (None: no check); never a traceback."""
    assert BIN.exists(), f"{BIN} is missing: install the client with `pip install ./client` (in requirements-dev.txt)"
    result = subprocess.run([str(BIN), *args], env=env, input=stdin, capture_output=True, text=True, timeout=60,
                            cwd=cwd or Path(env["XDG_CONFIG_HOME"]).parent)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    if ok is True:
        assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    elif ok is False:
        assert result.returncode != 0, result.stdout
    return result


def run_json(env: dict[str, str], *args: str, **kwargs: Any) -> Any:
    return json.loads(run(env, "--json", *args, **kwargs).stdout)


# -- the real local stack -----------------------------------------------------------------------

@dataclass
class Stack:
    server: Server
    data: Path

    @property
    def url(self) -> str:
        return self.server.url

    def place(self, username: str, relative: str, source: Path) -> None:
        """Put a file into the account's space as the laptop user would (dropped into the bucket folder)."""
        target = localstack_server.bucket_folder(self.data, relative, username)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)

    def refill(self, username: str, amount: int) -> None:
        r = requests.post(self.url + "/refill", auth=("boss", "boss-password"), timeout=30,
                          json={"username": username, "amount": amount})
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Stack]:
    """`python -m infra.localstack` in its own process group, with an admin for refills."""
    data = tmp_path_factory.mktemp("stack")
    server = localstack_server.start(data, models_dir)
    yield Stack(server, data)
    server.stop()


def new_user(env: dict[str, str]) -> str:
    username = f"u{uuid.uuid4().hex[:10]}"
    run(env, "register", username, "--password-stdin", stdin=PASSWORD + "\n")
    return username


def config_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "imageclassify" / "config.json"


# -- the fake API for endpoints the server does not have yet -----------------------------------------

@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class FakeApi:
    """Routes `(METHOD, path regex)` to handlers returning (status, JSON or bytes[, headers]); records every request."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    routes: list[tuple[str, re.Pattern[str], Callable[[Seen], Reply]]] = field(default_factory=list)

    def route(self, method: str, pattern: str, handler: Callable[[Seen], Reply]) -> None:
        self.routes.insert(0, (method, re.compile(pattern), handler))

    def requests(self, method: str, prefix: str = "/") -> list[Seen]:
        return [s for s in self.seen if s.method == method and s.path.startswith(prefix)]

    def answer(self, seen: Seen) -> Reply:
        self.seen.append(seen)
        for method, pattern, handler in self.routes:
            if method == seen.method and pattern.fullmatch(seen.path):
                return handler(seen)
        return 404, {"error": {"status": 404, "code": "not_found", "message": "No such endpoint (fake)."}}


def _handler_for(fake: FakeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            reply = fake.answer(Seen(self.command, url.path, parse_qs(url.query), dict(self.headers), body))
            status, payload, headers = (*reply, {}) if len(reply) == 2 else reply
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "image/png" if isinstance(payload, bytes) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeApi]:
    api = FakeApi()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(api))
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield api
    server.shutdown()
    server.server_close()


def error(status: int, code: str, message: str) -> Reply:
    return status, {"error": {"status": status, "code": code, "message": message}}


@pytest.fixture
def fake_env(tmp_path: Path, fake: FakeApi) -> dict[str, str]:
    return client_env(tmp_path, fake.url, IMAGECLASSIFY_KEY="icf_test-key")


# == against the real stack =======================================================================

def test_register_login_balance_and_refusals(tmp_path: Path, stack: Stack) -> None:
    env = client_env(tmp_path, stack.url)
    username = new_user(env)
    path = config_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    saved = json.loads(path.read_text())
    assert saved["api"] == stack.url and saved["accounts"][stack.url]["username"] == username
    first_key = saved["accounts"][stack.url]["api_key"]
    assert f"{username}: 5 tokens" in run(env, "balance").stdout
    assert run_json(env, "balance") == {"username": username, "tokens": 5}

    login = run_json(env, "login", username, "--password-stdin", stdin=PASSWORD + "\n")
    assert login["username"] == username and "api_key" not in login  # the key goes to the 0600 file only
    assert json.loads(path.read_text())["accounts"][stack.url]["api_key"] != first_key
    assert run_json(env, "balance")["tokens"] == 5

    old = run(env, "--key", first_key, "balance", ok=False)  # login rotated the key: the old one is refused
    assert old.returncode == 1 and "API key is not valid" in old.stderr
    wrong = run({**env, "IMAGECLASSIFY_KEY": "icf_nope"}, "--json", "balance", ok=False)
    assert wrong.returncode == 1 and json.loads(wrong.stdout)["error"]["status"] == 401
    bad_password = run(env, "login", username, "--password-stdin", stdin="wrong password\n", ok=False)
    assert bad_password.returncode == 1 and "error:" in bad_password.stderr
    taken = run(env, "register", username, "--password-stdin", stdin=PASSWORD + "\n", ok=False)
    assert taken.returncode == 1 and "409" in taken.stderr


def test_keys_password_and_account_delete(tmp_path: Path, stack: Stack) -> None:
    env = client_env(tmp_path, stack.url)
    username = new_user(env)
    made = run_json(env, "keys", "create", "kiosk", "--scope", "classify")
    assert made["scope"] == "classify" and made["key"].startswith("icf_")
    plain = run(env, "keys", "create", "ci").stdout
    assert "shown only now" in plain and re.search(r"^icf_\S+$", plain, re.M)
    listed = run_json(env, "keys", "list")["keys"]
    assert [k["name"] for k in listed] == ["default", "kiosk", "ci"] and "key" not in listed[1]
    assert "kiosk" in run(env, "keys", "list").stdout and "never" in run(env, "keys", "list").stdout
    narrow = run(env, "--key", made["key"], "keys", "list", ok=False)
    assert narrow.returncode == 1 and "scope" in narrow.stderr
    assert run_json(env, "keys", "revoke", made["id"]) == {"revoked": made["id"]}
    assert run(env, "--key", made["key"], "balance", ok=False).returncode == 1
    assert run(env, "keys", "revoke", made["id"], ok=False).returncode == 1  # gone already: 404
    wrong = run(env, "password", "--password-stdin", stdin="not it\nnew password 1\n", ok=False)
    assert wrong.returncode == 1 and "wrong" in wrong.stderr
    run(env, "password", "--password-stdin", stdin=f"{PASSWORD}\nnew password 1\n")
    assert run_json(env, "balance")["username"] == username  # the saved key keeps working
    refused = run(env, "account", "delete", "--password-stdin", stdin="new password 1\n", ok=False)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = run_json(env, "account", "delete", "--yes", "--password-stdin", stdin="new password 1\n")
    assert gone == {"username": username, "status": "deleting"}
    assert run(env, "balance", ok=False).returncode == 1


def test_classify_photos_table_json_and_bad_files(tmp_path: Path, stack: Stack) -> None:
    env = client_env(tmp_path, stack.url)
    username = new_user(env)
    stack.refill(username, 10)
    coffee, chelsea, hopper = (str(photos.path(n)) for n in ("coffee.png", "chelsea.png", "grace_hopper.jpg"))
    table = run(env, "classify", coffee, chelsea, hopper, "--top-k", "3").stdout
    assert "espresso" in table and "tabby" in table and "military uniform" in table and "3 of 3" in table
    assert coffee in table  # each table is headed by its whole file name

    reply = run_json(env, "classify", coffee, "-k", "2")
    assert reply["results"][0]["input"] == coffee and reply["tokens_remaining"] == 11
    assert [p["label"] for p in reply["results"][0]["predictions"]][:1] == ["espresso"]
    assert len(reply["results"][0]["predictions"]) == 2

    text = tmp_path / "notes.txt"
    text.write_text("not an image at all")
    alone = run(env, "classify", str(text), ok=False)
    assert alone.returncode == 1 and "not an image" in alone.stderr and "notes.txt" in alone.stderr
    mixed = run(env, "--json", "classify", str(text), coffee, ok=False)
    results = json.loads(mixed.stdout)["results"]
    assert results[0]["error"]["status"] == 415 and results[1]["predictions"][0]["label"] == "espresso"
    assert run_json(env, "balance")["tokens"] == 10  # the text file was never charged

    missing = run(env, "classify", str(tmp_path / "nope.jpg"), ok=False)
    assert missing.returncode == 2 and "No such file" in missing.stderr


def test_server_down_and_no_key(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    down = run(client_env(tmp_path, url, IMAGECLASSIFY_KEY="icf_x"), "balance", ok=False)
    assert down.returncode == 3 and f"Cannot reach the API at {url}" in down.stderr
    nokey = run(client_env(tmp_path, url), "balance", ok=False)
    assert nokey.returncode == 2 and "imageclassify register" in nokey.stderr
    usage = run(client_env(tmp_path, url), "classify", ok=False)
    assert usage.returncode == 2


def test_job_watch_sorts_a_bucket_folder(tmp_path: Path, stack: Stack) -> None:
    env = client_env(tmp_path, stack.url)
    username = new_user(env)
    source = f"{username}-photos/"
    for i, name in enumerate(["coffee.png", "chelsea.png", "grace_hopper.jpg", "coffee.png"]):
        stack.place(username, f"{source}{i}-{name}", photos.path(name))
    job = run_json(env, "job", source, "--classes", "food,cat,clothing", "--watch", "--interval", "0.2")
    assert job["status"] == "done" and job["matched"] == {"food": 2, "cat": 1, "clothing": 1}
    table = run(env, "jobs", "show", job["id"]).stdout
    assert "food" in table and "4/4" in table and "done" in table
    assert run_json(env, "balance")["tokens"] == 1
    short = run(env, "job", source, "--classes", "food", ok=False)  # 4 images, 1 token: refused up front
    assert short.returncode == 1 and "402" in short.stderr


def test_sort_against_the_real_stack(tmp_path: Path, stack: Stack) -> None:
    env = client_env(tmp_path, stack.url)
    new_user(env)
    folder = tmp_path / "pics"
    folder.mkdir()
    shutil.copy(photos.path("coffee.png"), folder / "coffee.png")
    summary = run_json(env, "sort", str(folder), "--classes", "food,cat")
    assert summary["sorted"] == {"food": 1, "cat": 0} and (folder / "food" / "coffee.png").exists()


# == against the fake API (endpoints and fields the server does not have yet) ===========================

PHOTO_CLASSES = {"coffee.png": {"food": 0.98, "cat": 0.0, "clothing": 0.0},
                 "chelsea.png": {"food": 0.0, "cat": 0.93, "clothing": 0.0},
                 "grace_hopper.jpg": {"food": 0.0, "cat": 0.0, "clothing": 0.81},
                 "camera.png": {"food": 0.01, "cat": 0.0, "clothing": 0.05}}


class FakeClassifier:
    """`POST /classify`, with `classes` class scores by photo; 415 for anything else; counts what it charges."""

    def __init__(self) -> None:
        self.by_bytes = {photos.data(n): scores for n, scores in PHOTO_CLASSES.items()}
        self.charged = 0

    def __call__(self, seen: Seen) -> Reply:
        body = seen.json()
        results: list[dict[str, Any]] = []
        for index, item in enumerate(body["images"]):
            scores = self.by_bytes.get(base64.b64decode(item["image"]))
            if scores is None:
                results.append({"index": index, **error(415, "not_an_image", "This is not an image we can read.")[1]})
                continue
            self.charged += 1
            if "classes" not in body:
                results.append({"index": index, "predictions": [{"label": "espresso", "score": 0.9, "class_id": 967}]})
                continue
            scores = {c: scores.get(c, 0.0) for c in body["classes"]}
            best = max(scores, key=lambda c: scores[c])
            results.append({"index": index, "predictions": [{"label": "x", "score": 0.5, "class_id": 1}],
                            "class_scores": scores, "class": best if scores[best] >= body["min_score"] else None})
        if all("error" in r for r in results):
            return results[0]["error"]["status"], {"error": results[0]["error"]}
        return 200, {"model": "efficientnet_lite0", "results": results, "tokens_remaining": 100 - self.charged}


def photo_folder(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    shutil.copy(photos.path("coffee.png"), root / "coffee.png")
    shutil.copy(photos.path("chelsea.png"), root / "sub" / "chelsea.png")
    shutil.copy(photos.path("grace_hopper.jpg"), root / "sub" / "deeper" / "grace [1].jpg")
    shutil.copy(photos.path("camera.png"), root / "camera.png")
    (root / "notes.txt").write_text("a shopping list")
    return root


def test_sort_copies_resumes_and_moves(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    classifier = FakeClassifier()
    fake.route("POST", "/classify", classifier)
    folder = photo_folder(tmp_path / "pics")
    first = run_json(fake_env, "sort", str(folder), "--classes", "food,cat,clothing", "--min-score", "0.5")
    assert first["sorted"] == {"food": 1, "cat": 1, "clothing": 1} and first["unmatched"] == 1
    assert [f["path"] for f in first["failed"]] == ["notes.txt"] and "not an image" in first["failed"][0]["message"]
    assert (folder / "food" / "coffee.png").read_bytes() == photos.data("coffee.png")
    assert (folder / "cat" / "sub" / "chelsea.png").exists() and (folder / "unmatched" / "camera.png").exists()
    assert (folder / "clothing" / "sub" / "deeper" / "grace [1].jpg").exists()
    assert (folder / "coffee.png").exists()  # copied, not moved
    sent = fake.requests("POST", "/classify")[0]
    assert sent.json()["classes"] == ["food", "cat", "clothing"] and sent.json()["min_score"] == 0.5
    assert len(sent.json()["images"]) == 5 and sent.headers.get("Idempotency-Key")
    assert classifier.charged == 4
    state = json.loads((folder / ".imageclassify-sort.json").read_text())
    assert next(iter(state["sources"].values()))["coffee.png"]["destination"] == "food/coffee.png"

    again = run_json(fake_env, "sort", str(folder), "--classes", "food,cat,clothing", "--min-score", "0.5")
    assert again["skipped"] == 4 and again["sorted"] == {"food": 0, "cat": 0, "clothing": 0}
    assert classifier.charged == 4  # nothing classified twice; the class folders were not read as input
    assert [len(r.json()["images"]) for r in fake.requests("POST", "/classify")[1:]] == [1]  # only the text file

    table = run(fake_env, "sort", str(folder), "--classes", "food,cat,clothing").stdout
    assert "already sorted (skipped)" in table and "notes.txt" in table

    out = tmp_path / "sorted"
    moved = run_json(fake_env, "sort", str(folder), "--classes", "cat,food", "--out", str(out), "--move")
    assert moved["sorted"] == {"cat": 1, "food": 1} and not (folder / "sub" / "chelsea.png").exists()
    assert (out / "cat" / "sub" / "chelsea.png").exists() and (folder / "notes.txt").exists()
    assert (out / "food" / "coffee.png").exists() and not (folder / "coffee.png").exists()


def test_sort_refusals_and_an_old_server(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    folder = photo_folder(tmp_path / "pics")
    for bad in ("", "a/b", "unmatched", "..", "dog,dog"):
        assert run(fake_env, "sort", str(folder), "--classes", bad, ok=False).returncode == 2
    fake.route("POST", "/classify", lambda s: error(402, "insufficient_tokens", "This request needs 5 token(s)."))
    broke = run(fake_env, "sort", str(folder), "--classes", "food", ok=False)
    assert broke.returncode == 1 and "needs 5 token(s)" in broke.stderr and "sorted" in broke.stdout
    fake.route("POST", "/classify", lambda s: (200, {"model": "m", "tokens_remaining": 1, "results": [
        {"index": i, "predictions": []} for i in range(len(s.json()["images"]))]}))
    old = run(fake_env, "sort", str(folder), "--classes", "food", ok=False)
    assert old.returncode == 1 and "does not support `classes`" in old.stderr


def test_classify_batches_and_retries_503(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    calls: list[Seen] = []

    def flaky(seen: Seen) -> Reply:
        calls.append(seen)
        if len(calls) == 1:
            return (*error(503, "unavailable", "Busy; retry."), {"Retry-After": "0"})
        n = len(seen.json()["images"])
        return 200, {"model": "m", "tokens_remaining": 7, "results": [
            {"index": i, "predictions": [{"label": "espresso", "score": 0.9, "class_id": 967}]} for i in range(n)]}

    fake.route("POST", "/classify", flaky)
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i:02}.png").write_bytes(b"png %d" % i)
    reply = run_json(fake_env, "classify", str(folder), "--model", "mine", "--top-k", "2")
    assert len(reply["results"]) == 20 and reply["tokens_remaining"] == 7
    assert [len(c.json()["images"]) for c in calls] == [16, 16, 4]
    keys = [c.headers["Idempotency-Key"] for c in calls]
    assert keys[0] == keys[1] != keys[2]  # the retry repeats its key (free); each batch has its own
    assert calls[0].json()["model"] == "mine" and calls[0].json()["top_k"] == 2
    assert calls[0].headers["Authorization"] == "Bearer icf_test-key"

    big = folder / "big.png"
    with big.open("wb") as fh:
        fh.truncate(11 * 1024 * 1024)
    sent = len(calls)
    too_big = run(fake_env, "--json", "classify", str(big), str(folder / "00.png"), ok=False)
    assert [r.get("error", {}).get("code") for r in json.loads(too_big.stdout)["results"]] == ["payload_too_large", None]
    assert len(calls) == sent + 1 and len(calls[-1].json()["images"]) == 1  # the big file was never sent
    big.unlink()

    fake.route("POST", "/classify", lambda s: error(415, "not_an_image", f"Not an image ({len(s.json()['images'])})."))
    split = run(fake_env, "classify", str(folder / "00.png"), str(folder / "01.png"), ok=False)
    assert split.stderr.count("Not an image (1).") == 2  # a refused batch is retried image by image
    fake.route("POST", "/jobs", lambda s: (*error(503, "unavailable", "Busy; retry."), {"Retry-After": "0"}))
    job = run(fake_env, "job", "all/", "--classes", "dog", ok=False)
    assert job.returncode == 1 and "Busy; retry." in job.stderr
    assert len(fake.requests("POST", "/jobs")) == 1  # a POST without an Idempotency-Key is never repeated


def test_upload_skips_what_is_there(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    folder = tmp_path / "holiday"
    (folder / "sub").mkdir(parents=True)
    for name, data in {"a.png": b"aaaa", "b.png": b"bbbb", "c.jpg": b"cc", "sub/d.png": b"d", ".DS_Store": b"x",
                       "bad.txt": b"text"}.items():
        (folder / name).write_bytes(data)
    pages = {"": {"files": [{"path": "holiday/a.png", "size": 4}], "next": "page2"},
             "page2": {"files": [{"path": "holiday/b.png", "size": 99}], "next": None}}
    fake.route("GET", "/files", lambda s: (200, pages[s.query.get("next", [""])[0]]))
    fake.route("PUT", "/files/.*", lambda s: error(415, "not_an_image", "Only images can be stored.")
               if s.path.endswith(".txt") else (201, {"path": s.path[7:], "size": len(s.body)}))
    result = run_json(fake_env, "upload", str(folder))
    assert result["uploaded"] == 3 and result["skipped"] == 1 and result["prefix"] == "holiday/"
    assert [f["path"] for f in result["failed"]] == ["holiday/bad.txt"]
    listed = fake.requests("GET", "/files")
    assert [r.query for r in listed] == [{"prefix": ["holiday/"]}, {"prefix": ["holiday/"], "next": ["page2"]}]
    puts = {r.path: r for r in fake.requests("PUT")}
    assert set(puts) == {"/files/holiday/b.png", "/files/holiday/c.jpg", "/files/holiday/sub/d.png",
                         "/files/holiday/bad.txt"}
    assert puts["/files/holiday/c.jpg"].body == b"cc" and puts["/files/holiday/c.jpg"].headers["Content-Type"] == "image/jpeg"

    fake.route("PUT", "/files/.*", lambda s: error(403, "quota_exceeded", "Your space is full (100 files)."))
    full = run(fake_env, "upload", str(folder), "--to", "/trip//2024/", ok=False)
    assert full.returncode == 1 and "Your space is full" in full.stderr
    assert fake.requests("GET", "/files")[-1].query["prefix"] == ["trip/2024/"]
    assert run(fake_env, "upload", str(folder), "--to", "../x", ok=False).returncode == 2


READY = {"name": "pets", "status": "ready", "progress": {"done": 12, "total": 12, "percentage": 100.0},
         "classes": ["cat", "dog"], "split": {"train": 10, "validation": 1, "test": 1},
         "metrics": {"accuracy": 0.917, "macro_f1": 0.9, "confusion_matrix": {"labels": ["cat", "dog"],
                                                                               "matrix": [[1, 0], [0, 1]]},
                     "per_class": {"cat": {"precision": 1.0, "recall": 0.8, "f1": 0.889, "support": 5, "roc_auc": 0.97},
                                   "dog": {"precision": 0.8, "recall": 1.0, "f1": 0.889, "support": 4, "roc_auc": 0.97}}}}


def test_train_uploads_then_watches(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    data = tmp_path / "pets"
    for label in ("cat", "dog"):
        (data / label).mkdir(parents=True)
        for i in range(6):
            (data / label / f"{i}.png").write_bytes(b"%s %d" % (label.encode(), i))
    fake.route("GET", "/files", lambda s: (200, {"files": [], "next": None}))
    fake.route("PUT", "/files/.*", lambda s: (201, {"path": s.path[7:], "size": len(s.body)}))
    fake.route("POST", "/models", lambda s: (202, {"name": "pets", "status": "queued", "classes": ["cat", "dog"],
                                                   "images": 12}))
    statuses = iter([{"name": "pets", "status": "embedding", "progress": {"done": 4, "total": 12}},
                     {"name": "pets", "status": "training", "progress": {"done": 12, "total": 12}}])
    fake.route("GET", "/models/pets", lambda s: (200, next(statuses, READY)))
    table = run(fake_env, "train", str(data), "--name", "pets", "--augment", "2", "--watch", "--interval", "0.05").stdout
    assert "accuracy 0.917" in table and "0.889" in table and "dog" in table
    assert len(fake.requests("PUT", "/files/datasets/pets/")) == 12
    assert fake.requests("PUT")[0].path == "/files/datasets/pets/cat/0.png"
    assert fake.requests("POST", "/models")[0].json() == {"name": "pets", "source": "datasets/pets/", "augment": 2}
    assert len(fake.requests("GET", "/models/pets")) == 3

    reply = run_json(fake_env, "train", "shared/pets/", "--name", "pets2")
    assert reply["model"]["status"] == "queued" and "upload" not in reply
    assert fake.requests("POST", "/models")[-1].json() == {"name": "pets2", "source": "shared/pets/"}
    run_json(fake_env, "train", "shared/pets/", "--name", "pets4", "--backbone", "efficientnet_lite2")
    assert fake.requests("POST", "/models")[-1].json() == {"name": "pets4", "source": "shared/pets/",
                                                           "backbone": "efficientnet_lite2"}
    assert run(fake_env, "train", str(data), "--name", "Bad Name", ok=False).returncode == 2
    (data / "dog").rename(data / ".dog")
    assert "at least 2" in run(fake_env, "train", str(data), "--name", "pets3", ok=False).stderr


def test_models_list_show_confusion_delete_and_job_cancel(tmp_path: Path, fake: FakeApi,
                                                          fake_env: dict[str, str]) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    fake.route("GET", "/models", lambda s: (200, {"models": [
        {"name": "efficientnet_lite0", "status": "ready", "classes": 1000, "builtin": True, "default": True},
        {"name": "efficientnet_lite2", "status": "ready", "builtin": True, "default": False},
        {**READY, "backbone": "efficientnet_lite2"}]}))
    fake.route("GET", "/models/pets", lambda s: (200, READY))
    fake.route("GET", "/models/pets/confusion.png", lambda s: (200, png))
    fake.route("DELETE", "/models/pets", lambda s: (204, b""))
    fake.route("GET", "/models/nope", lambda s: error(404, "not_found", "No model named nope."))
    fake.route("DELETE", "/jobs/abc123", lambda s: (200, {"id": "abc123", "status": "cancelled", "total": 4,
                                                         "processed": 1, "matched": {"dog": 1}, "unmatched": 0,
                                                         "failed": 0, "created": 1000.0, "ended": 1002.54}))
    listing = run(fake_env, "models").stdout
    assert "efficientnet_lite0" in listing and "1000" in listing and "0.917" in listing
    assert "built-in, default" in listing and "efficientnet_lite2" in listing
    assert [m["name"] for m in run_json(fake_env, "models")["models"]] == ["efficientnet_lite0", "efficientnet_lite2",
                                                                           "pets"]
    shown = run(fake_env, "models", "pets", "--confusion", str(tmp_path / "cm.png")).stdout
    assert "macro F1 0.900" in shown and (tmp_path / "cm.png").read_bytes() == png
    assert run_json(fake_env, "models", "delete", "pets") == {"name": "pets", "deleted": True}
    assert fake.requests("DELETE", "/models/pets")
    missing = run(fake_env, "models", "nope", ok=False)
    assert missing.returncode == 1 and "No model named nope." in missing.stderr
    assert run(fake_env, "models", "delete", ok=False).returncode == 2
    assert run(fake_env, "models", "--confusion", "x.png", ok=False).returncode == 2
    cancelled = run(fake_env, "jobs", "cancel", "abc123").stdout
    assert "cancelled" in cancelled and "1/4" in cancelled and "It ran 2.5 s." in cancelled  # how long it ran, from the server's times


def test_ctrl_c_stops_cleanly(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    fake.route("GET", "/jobs/j1", lambda s: (200, {"id": "j1", "status": "running", "total": 10, "processed": 3,
                                                  "matched": {}, "unmatched": 0, "failed": 0}))
    proc = subprocess.Popen([str(BIN), "jobs", "show", "j1", "--watch", "--interval", "0.05"], env=fake_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    def polled_twice() -> bool:
        assert proc.poll() is None, proc.communicate()
        return len(fake.requests("GET", "/jobs/j1")) >= 2

    wait_until(polled_twice, 60, "the watch never polled twice", interval=0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130 and "Interrupted" in stderr and "Traceback" not in stderr + stdout


def test_saved_key_is_only_sent_to_its_own_api(tmp_path: Path, fake: FakeApi) -> None:
    config = config_file(tmp_path)
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"api": "http://127.0.0.1:9", "accounts": {
        "http://127.0.0.1:9": {"username": "alice", "api_key": "icf_secret"}}}))
    elsewhere = run(client_env(tmp_path, fake.url), "balance", ok=False)
    assert elsewhere.returncode == 2 and not fake.seen  # the saved key was not sent to another server
    fake.route("GET", "/tokens", lambda s: (200, {"username": "alice", "tokens": 3}))
    env = {k: v for k, v in client_env(tmp_path, fake.url).items() if k != "IMAGECLASSIFY_API"}
    assert run(env, "--api", fake.url + "/", "--key", "icf_flag", "balance").stdout.strip() == "alice: 3 tokens"
    assert fake.seen[-1].headers["Authorization"] == "Bearer icf_flag"
    down = run(env, "balance", ok=False)  # the saved API (nothing listens on port 9)
    assert down.returncode == 3 and "http://127.0.0.1:9" in down.stderr


def test_progress_bars_on_a_terminal(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    """With stdout a terminal, the progress bars run (and leave the tables intact)."""
    import pty

    fake.route("POST", "/classify", FakeClassifier())
    folder = photo_folder(tmp_path / "pics")
    for i in range(17):
        shutil.copy(photos.path("coffee.png"), folder / f"coffee-{i}.png")
    for args in (["classify", str(folder)], ["sort", str(folder), "--classes", "food,cat"]):
        master, slave = pty.openpty()
        proc = subprocess.Popen([str(BIN), *args], env={**fake_env, "TERM": "xterm"}, stdout=slave, stderr=slave,
                                cwd=tmp_path)
        os.close(slave)
        chunks = []
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(master)
        text = b"".join(chunks).decode(errors="replace")
        assert proc.wait(timeout=30) == (1 if args[0] == "classify" else 0), text
        assert "Traceback" not in text and ("espresso" in text or "food" in text)


def test_class_choice_and_batching_rules() -> None:
    """The pure rules, in-process: the server's class wins, else the best class score at or above min_score."""
    from imageclassify_client import inputs, sorting

    classes = ["dog", "cat"]
    assert sorting.choose({"class": "cat", "class_scores": {"cat": 0.1}}, classes, 0.3) == "cat"
    assert sorting.choose({"class": None}, classes, 0.3) == "unmatched"
    assert sorting.choose({"class": "../etc"}, classes, 0.3) == "unmatched"  # never a folder nobody asked for
    assert sorting.choose({"class_scores": {"dog": 0.2, "cat": 0.5}}, classes, 0.3) == "cat"
    assert sorting.choose({"class_scores": {"dog": 0.2, "cat": 0.25}}, classes, 0.3) == "unmatched"
    small = [inputs.Source(f"s{i}", "file", f"s{i}", 1000) for i in range(40)]
    assert [len(b) for b in inputs.batches(small)] == [16, 16, 8]
    big = inputs.Source("big", "file", "big", 6 * 1024 * 1024)
    assert [len(b) for b in inputs.batches([small[0], big, small[1], small[2]])] == [1, 1, 2]
    assert [s.kind for s in inputs.parse_sources(["https://x.test/a.jpg", "gs://b/users/u/a.png"])] == ["url", "uri"]


def test_damaged_config_odd_replies_and_job_options(tmp_path: Path, fake: FakeApi, fake_env: dict[str, str]) -> None:
    config = config_file(tmp_path)
    config.parent.mkdir(parents=True)
    config.write_text("{not json")
    damaged = run(client_env(tmp_path, fake.url), "balance", ok=False)
    assert damaged.returncode == 2 and "Fix or delete it" in damaged.stderr
    config.unlink()

    fake.route("GET", "/tokens", lambda s: (502, b"<html>Bad Gateway</html>"))
    proxy = run(fake_env, "balance", ok=False)
    assert proxy.returncode == 1 and "HTTP 502" in proxy.stderr
    fake.route("GET", "/tokens", lambda s: (200, b"<html>a login page</html>"))
    html = run(fake_env, "balance", ok=False)
    assert html.returncode == 1 and "did not answer with JSON" in html.stderr

    fake.route("POST", "/jobs", lambda s: (202, {"id": "j2", "status": "queued", "total": 3}))
    created = run_json(fake_env, "job", "pets/", "--model", "pets", "--min-score", "0.5")
    assert created["id"] == "j2"
    assert fake.requests("POST", "/jobs")[-1].json() == {"source": "pets/", "model": "pets", "min_score": 0.5}
    assert run(fake_env, "job", "pets/", ok=False).returncode == 2  # neither classes nor a model
    run(fake_env, "job", "all/", "--classes", "dog, cat")
    assert fake.requests("POST", "/jobs")[-1].json() == {"source": "all/", "classes": ["dog", "cat"]}
