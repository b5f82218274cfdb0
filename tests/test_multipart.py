"""The direct multipart parse (common/http/multipart.py) against werkzeug's: the same form and files for every
body, plain or hostile, the same 413s, and no regular expression compiled for a plain upload."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from unittest import mock

import flask
import functions_framework
import pytest
import requests
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser

from common.http import multipart
from infra.targets import TARGETS
from tests.conftest import configure

pytestmark = pytest.mark.fast

B = b"b0undary"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"\r\n--b0und"  # a near-delimiter inside the bytes


def part(headers: str, data: bytes) -> bytes:
    return b"--" + B + b"\r\n" + headers.encode("latin-1") + b"\r\n\r\n" + data + b"\r\n"


def form(*parts: bytes, end: bytes = b"--" + B + b"--\r\n") -> bytes:
    return b"".join(parts) + end


FILE = 'Content-Disposition: form-data; name="file"; filename="p.png"\r\nContent-Type: image/png'
BODIES = {
    "one file": form(part(FILE, PNG)),
    "file and fields": form(part('Content-Disposition: form-data; name="top_k"', b"3"), part(FILE, PNG),
                            part('Content-Disposition: form-data; name="classes"', b"cat,dog")),
    "two files": form(part(FILE, PNG), part(FILE.replace('"file"', '"image"'), b"x")),
    "empty file input": form(part('Content-Disposition: form-data; name="file"; filename=""', b"")),
    "quoted name with ; and =": form(part('Content-Disposition: form-data; name="a;b=c"; filename="x;y.png"', PNG)),
    "filename*": form(part("Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''%C3%A9t%C3%A9.png", PNG)),
    "latin-1 field": form(part('Content-Disposition: form-data; name="u"\r\nContent-Type: text/plain; '
                               'charset=iso-8859-1', "é".encode("latin-1"))),
    "invalid utf-8 field": form(part('Content-Disposition: form-data; name="u"', b"\xff\xfe")),
    "epilogue": form(part(FILE, PNG), end=b"--" + B + b"--\r\nepilogue --" + B + b"\r\n"),
    "no final CRLF": form(part(FILE, PNG), end=b"--" + B + b"--"),
    "delimiter inside data then junk": form(part(FILE, PNG + b"\r\n--" + B + b"junk" + PNG)),
    "preamble": b"preamble\r\n" + form(part(FILE, PNG)),
    "a line break first": b"\r\n" + form(part(FILE, PNG)),
    "two line breaks first": b"\r\n\r\n" + form(part(FILE, PNG)),
    "bare LF": form(part(FILE, PNG)).replace(b"\r\n", b"\n"),
    "folded header": form(part('Content-Disposition: form-data;\r\n name="file"; filename="p.png"', PNG)),
    "non-ASCII header": form(part('Content-Disposition: form-data; name="file"; filename="été.png"', PNG)),
    "no Content-Disposition": form(part("Content-Type: image/png", PNG)),
    "no name": form(part('Content-Disposition: form-data; filename="p.png"', PNG)),
    "header without colon": form(part('Content-Disposition: form-data; name="file"\r\nbroken', PNG)),
    "unterminated": part(FILE, PNG),
    "empty body": b"",
    "whitespace after delimiter": form(part(FILE, PNG)).replace(b"--" + B + b"\r\n", b"--" + B + b"  \r\n"),
    "huge header block": form(part(FILE + "\r\nX-Pad: " + "a" * 20_000, PNG)),
}


def upload() -> tuple[bytes, str]:
    """A photo upload as `requests` encodes it (a new random boundary each time): body, Content-Type."""
    sent = requests.Request("POST", "http://x/", files={"file": ("p.jpg", PNG, "image/jpeg")}).prepare()
    assert isinstance(sent.body, bytes)
    return sent.body, sent.headers["Content-Type"]


def parsed(parser_class: type[FormDataParser], body: bytes, **limits: Any) -> Any:
    parser = parser_class(max_form_memory_size=limits.get("field", 500_000), max_form_parts=limits.get("parts", 1000))
    try:
        _, fields, files = parser.parse(io.BytesIO(body), "multipart/form-data", len(body), {"boundary": B.decode()})
    except RequestEntityTooLarge:
        return "413"
    return (list(fields.items(multi=True)),
            [(name, f.filename, f.read(), list(f.headers.items())) for name, f in files.items(multi=True)])


@pytest.mark.parametrize("name", sorted(BODIES))
def test_same_form_and_files_as_werkzeug(name: str) -> None:
    body = BODIES[name]
    assert parsed(multipart.FormParser, body) == parsed(FormDataParser, body)


@pytest.mark.parametrize(("body", "limits"), [
    (form(part('Content-Disposition: form-data; name="u"', b"a" * 500_001)), {}),  # Flask's field limit
    (form(part(FILE, PNG), part('Content-Disposition: form-data; name="u"', b"a" * 80_000)), {"field": 70_000}),
    (BODIES["file and fields"], {"parts": 2})])
def test_same_413s_as_werkzeug(body: bytes, limits: dict[str, int]) -> None:
    assert parsed(multipart.FormParser, body, **limits) == parsed(FormDataParser, body, **limits) == "413"


def test_a_field_at_the_limit_is_read() -> None:
    body = form(part('Content-Disposition: form-data; name="u"', b"a" * 500_000))
    assert parsed(multipart.FormParser, body) == parsed(FormDataParser, body) == ([("u", "a" * 500_000)], [])


def test_plain_forms_take_the_direct_path() -> None:
    """What browsers, curl and requests send is cut directly; the unusual bodies go to werkzeug."""
    plain = {"one file", "file and fields", "two files", "empty file input", "quoted name with ; and =", "filename*",
             "latin-1 field", "invalid utf-8 field", "epilogue", "no final CRLF", "a line break first"}
    for name, body in BODIES.items():
        direct = multipart.parse(body, B, 500_000, 1000) is not None
        assert direct == (name in plain), name
    body, kind = upload()
    assert multipart.parse(body, kind.split("boundary=")[1].encode(), 500_000, 1000) is not None


def test_an_upload_compiles_no_regular_expression(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """werkzeug compiled two patterns for each request's new boundary (~0.1 ms of CPU, and its chunked state
    machine ~0.35 ms more for a photo): a classify upload now compiles none."""
    configure(monkeypatch, DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "accounts.db"), STORE_BACKEND="sqlite")
    target = TARGETS["classify"]
    app = functions_framework.create_app(target.name, str(target.source), target.signature)
    body, kind = upload()
    compiled: list[Any] = []
    real = re.compile

    def compile_counted(*args: Any, **kwargs: Any) -> Any:
        compiled.append(args)
        return real(*args, **kwargs)

    with (app.test_request_context("/classify", method="POST", data=body, content_type=kind) as context,
          mock.patch.object(re, "compile", compile_counted)):
        assert context.request.files["file"].read() == PNG
    assert compiled == []


@pytest.mark.parametrize(("query", "kind", "top_k"), [
    ("", "form", 3), ("?top_k=4", "form", 3), ("?top_k=4", "raw", 4), ("", "raw", 5)])
def test_options_from_the_form_then_the_query(query: str, kind: str, top_k: int) -> None:
    """A form's option fields come first, then the query string's (raw bodies read no form at all)."""
    from common.http import classify_parse

    app = flask.Flask(__name__)
    app.request_class = multipart.Request
    if kind == "form":
        body, content_type = BODIES["file and fields"], f"multipart/form-data; boundary={B.decode()}"
    else:
        body, content_type = PNG, "image/png"
    with app.test_request_context("/classify" + query, method="POST", data=body, content_type=content_type) as ctx:
        parsed = classify_parse.parse(ctx.request)
    assert parsed.top_k == top_k and parsed.items[0].value == PNG
    assert parsed.classes == (["cat", "dog"] if kind == "form" else None)
