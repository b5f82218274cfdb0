"""Where one classify request's CPU goes: `python -m bench.request_profile [multipart|raw] [N]`.

The local stack's WSGI app (guard, dispatcher, the classify function under functions-framework) is called in
this process, without a socket, with the photo upload a `requests` client sends (a 640x427 JPEG; multipart
with a new boundary each time, or the raw body); each part's CPU time (`time.process_time_ns`, so other
processes on the cores do not count) is summed over N requests. Parts nest: `service.run` holds the two store
transactions and the prediction, `classify_parse.parse` the form parse. What the server around the app (waitress
or gunicorn) and the client cost is not here: measure those as a user's client would (bench `throughput`).
"""

from __future__ import annotations

import collections
import functools
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import requests

PARTS = [  # (label, module, attribute): a function or a class method, timed wherever it is called
    ("the whole request (guard and all)", "infra.localstack", "Dispatcher.__call__"),
    ("  classify_parse.parse", "common.http.classify_parse", "parse"),
    ("    form parse (Flask's form parser)", "werkzeug.formparser", "FormDataParser.parse"),
    ("  auth (Bearer key: hash + look-up)", "common.http.auth", "authenticate"),
    ("  service.run", "common.classify.service", "run"),
    ("    billing.reserve (store transaction)", "common.accounts.billing", "reserve"),
    ("    decode + infer (predict_many)", "common.models.model", "Model.predict_many"),
    ("    settle (store transaction)", "common.accounts.billing", "Reservation.settle"),
    ("  JSON response (web.respond)", "common.http.web", "respond"),
    ("  request log line (RequestScope.finish)", "common.http.requestlog", "RequestScope.finish"),
]


def _timed(totals: collections.Counter[str], label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time_ns()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[label] += time.process_time_ns() - start

    return timed


def _instrument(totals: collections.Counter[str]) -> None:
    import importlib

    for label, module, name in PARTS:
        owner: Any = importlib.import_module(module)
        *path, attribute = name.split(".")
        for step in path:
            owner = getattr(owner, step, None)
        if owner is not None and hasattr(owner, attribute):
            setattr(owner, attribute, _timed(totals, label, getattr(owner, attribute)))


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "multipart"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    os.environ.update(DATA_DIR=tempfile.mkdtemp(), BCRYPT_ROUNDS="4", INTERNAL_SECRET="x" * 32)
    from werkzeug.test import EnvironBuilder

    from bench.throughput import encoded
    from common.bootstrap import deps
    from common.http.guard import Guard
    from infra.localstack import Dispatcher, build_apps

    data = encoded("coffee.png", (640, 427))
    totals: collections.Counter[str] = collections.Counter()
    _instrument(totals)
    app = Guard(Dispatcher(build_apps(), "x" * 32))

    def call(environ: dict[str, Any]) -> bytes:
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
        assert status[0].startswith(("200", "201")), body[:300]
        return body

    key = json.loads(call(EnvironBuilder(method="POST", path="/register", json={
        "username": "bench", "password": "a long password"}).get_environ()))["api_key"]
    deps().store.refill("bench", 1_000_000)

    def request() -> dict[str, Any]:
        if mode == "multipart":
            sent = requests.Request("POST", "http://x/", files={"file": ("p.jpg", data, "image/jpeg")}).prepare()
        else:
            sent = requests.Request("POST", "http://x/", data=data, headers={"Content-Type": "image/jpeg"}).prepare()
        headers = [("Authorization", f"Bearer {key}")]
        return EnvironBuilder(method="POST", path="/classify", headers=headers,
                              data=sent.body, content_type=sent.headers["Content-Type"]).get_environ()

    environs = [request() for _ in range(count)]
    stdout, sys.stdout = sys.stdout, io.StringIO()  # the request lines, not counted as a terminal's cost
    try:
        for _ in range(20):
            call(request())
        totals.clear()
        for environ in environs:
            call(environ)
    finally:
        sys.stdout = stdout
    whole = totals[PARTS[0][0]]
    print(f"{mode}: CPU per request over {count} requests (us)")
    for label, _, _ in PARTS:
        print(f"  {label:48s} {totals[label] / count / 1000:8.0f}")
    print(f"  {'everything but decode + infer':48s} {(whole - totals[PARTS[6][0]]) / count / 1000:8.0f}")


if __name__ == "__main__":
    main()
