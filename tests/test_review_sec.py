"""Defects found by the security review of 2026-12-05, each pinned by a test that failed before its fix."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import struct
import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest
import requests
from werkzeug.formparser import FormDataParser

from common.core import errors
from common.http import multipart
from common.media import heifbounds, isobmff
from tests import test_multipart as mp
from tests.conftest import Api, bearer, configure, make_api, new_bucket
from tests.phone_files import box

T = 30  # seconds: every HTTP call's timeout


def _heic_with_extents(grid_extents: int, tile_items: int, tile_extents: int, padding: int) -> bytes:
    """A 2x2 grid HEIC whose iloc repeats extents: the grid item `grid_extents` times over the whole file, and
    `tile_items` items each with `tile_extents` empty extents (a few bytes each in the header)."""
    infe = [box(b"infe", struct.pack(">HH4s", 1, 0, b"grid"), 2)]
    infe += [box(b"infe", struct.pack(">HH4s", 2 + i, 0, b"hvc1"), 2) for i in range(4)]
    iinf = box(b"iinf", struct.pack(">H", len(infe)) + b"".join(infe), 0)
    ispe = box(b"ispe", struct.pack(">II", 128, 128), 0) + box(b"ispe", struct.pack(">II", 64, 64), 0)
    ipma = struct.pack(">I", 5) + struct.pack(">HBB", 1, 1, 0x81)
    ipma += b"".join(struct.pack(">HBB", 2 + i, 1, 0x82) for i in range(4))
    iprp = box(b"iprp", box(b"ipco", ispe) + box(b"ipma", ipma, 0))
    iref = box(b"iref", box(b"dimg", struct.pack(">HH", 1, 4) + b"".join(struct.pack(">H", 2 + i)
                                                                           for i in range(4))), 0)
    places = struct.pack(">HHHIH", 1, 0, 0, 0, grid_extents) + struct.pack(">II", 0, 0x7FFFFFFF) * grid_extents
    places += b"".join(struct.pack(">HHHIH", 2 + i, 0, 0, 0, 1) + struct.pack(">II", 0, 16) for i in range(4))
    places += b"".join(struct.pack(">HHHIH", 100 + i, 0, 0, 0, tile_extents) + struct.pack(">II", 0, 0) * tile_extents
                       for i in range(tile_items))
    iloc = box(b"iloc", struct.pack(">BBH", 0x44, 0x40, 5 + tile_items) + places, 1)
    meta = box(b"meta", box(b"hdlr", b"\0" * 4 + b"pict" + b"\0" * 13, 0) + box(b"pitm", b"\0\x01", 0)
               + iinf + iloc + iref + iprp, 0)
    return box(b"ftyp", b"heic\0\0\0\0mif1heic") + meta + box(b"mdat", b"\0" * padding)


@pytest.mark.fast
def test_a_grid_whose_extents_repeat_the_file_costs_no_memory() -> None:
    """Before: the grid's description was every extent joined, 2,000 copies of a 64 KiB file (128 MB)."""
    data = _heic_with_extents(grid_extents=2000, tile_items=0, tile_extents=0, padding=64 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(errors.Unprocessable) as refused:
            heifbounds.claimed_size(data, "image/heic")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert refused.value.code == "undecodable_image"
    assert peak < 8 * 1024 * 1024, f"{peak:,} bytes to read a {len(data):,}-byte header"


@pytest.mark.fast
def test_lists_of_lists_in_a_header_are_bounded_as_a_whole() -> None:
    """Before: 64 items of 4,096 empty extents each (1.5 MB of header) were 262,144 extents read and kept: each
    list was bounded, their product was not (4,096 such items: 16 million, over a gigabyte, from 100 KB)."""
    data = _heic_with_extents(grid_extents=1, tile_items=64, tile_extents=4096, padding=16)
    started = time.monotonic()
    with pytest.raises(ValueError, match="list entries"):
        isobmff.parse(data)
    with pytest.raises(errors.Unprocessable) as refused:
        heifbounds.claimed_size(data, "image/heic")
    assert refused.value.code == "undecodable_image" and time.monotonic() - started < 20


@pytest.fixture(scope="module")
def s3_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = make_api(request, tmp_path_factory, "sqlite", **new_bucket("s3", request, tmp_path_factory.mktemp("s3")))
    yield api
    api.stop()


def test_an_upload_form_is_for_its_one_key(s3_api: Api) -> None:
    """Before: a path ending in `${filename}` made boto3 sign a `starts-with` policy: one form uploaded any number
    of files, under any key of the owner's space (dot names, `..` segments), none of them counted in the quota."""
    user = s3_api.register()
    for path in ("/${filename}", "/big/x${filename}"):
        r = requests.post(s3_api.url("files_api", "/files" + path), json={"size": 1000}, headers=bearer(user),
                          timeout=T)
        assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_path"), r.text
    r = requests.post(s3_api.url("files_api", "/files/big/a.png"), json={"size": 1000}, headers=bearer(user),
                      timeout=T)
    assert r.status_code == 201, r.text
    policy = json.loads(base64.b64decode(r.json()["upload"]["fields"]["policy"]))
    assert {"key": f"users/{user['username']}/big/a.png"} in policy["conditions"]
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in policy["conditions"])


FIELD = 'Content-Disposition: form-data; name="u"'
HIDDEN_DELIMITERS = {  # a delimiter werkzeug sees (after a bare CR or LF, or first in a part) and a plain cut missed
    "closing delimiter after a bare LF": mp.form(mp.part(FIELD, b"kept\n--" + mp.B + b"--dropped")),
    "delimiter after a bare CR": mp.form(mp.part(FIELD, b"kept\r--" + mp.B + b"\r\n" + FIELD.encode() + b"\r\n\r\nx")),
    "delimiter first in a part": mp.form(mp.part(FIELD, b"--" + mp.B + b"\r\n\r\nx")),
}


@pytest.mark.fast
@pytest.mark.parametrize("name", sorted(HIDDEN_DELIMITERS))
def test_a_delimiter_werkzeug_sees_inside_a_part_is_werkzeugs_to_cut(name: str) -> None:
    """Before: the direct parse kept `kept\\n--<boundary>--dropped` as the field where werkzeug reads `kept`."""
    body = HIDDEN_DELIMITERS[name]
    assert mp.parsed(multipart.FormParser, body) == mp.parsed(FormDataParser, body)


def test_a_password_change_revokes_every_other_key_however_many(account_api: Api) -> None:
    """Before: keys were deleted 25 at a time, and a page holding the key sending the change (kept) ended the
    loop: with 20 named keys and 10 console sessions, 5 of them kept working after `revoke_keys`."""
    user = account_api.register()
    others = [requests.post(account_api.url("register", "/keys"), json={"name": f"k{i}", "scope": "all"},
                            headers=bearer(user), timeout=T).json()["key"] for i in range(20)]
    for _ in range(10):
        r = requests.post(account_api.url("register", "/sessions"), auth=(user["username"], user["password"]),
                          timeout=T)
        assert r.status_code == 201, r.text
        others.append(r.json()["key"])
    r = requests.post(account_api.url("register", "/password"), headers=bearer(user), timeout=T,
                      json={"old_password": user["password"], "new_password": "another long one", "revoke_keys": True})
    assert r.status_code == 204, r.text
    alive = [key[:12] for key in others if requests.get(account_api.url("tokens", "/tokens"), timeout=T,
                                                         headers={"Authorization": f"Bearer {key}"}).status_code != 401]
    assert alive == []
    assert requests.get(account_api.url("tokens", "/tokens"), headers=bearer(user), timeout=T).status_code == 200


@pytest.mark.fast
@pytest.mark.parametrize("header", ["t=\u00b2,v1=ab", "t=1,v1=\u00e9", "t=\u0661,v1=00", "t=1,v1=\udcff"])
def test_a_hostile_signature_header_is_invalid_not_an_exception(header: str) -> None:
    """Before: `t=²` raised ValueError (`isdigit` takes superscripts, `int` does not) and a non-ASCII `v1` a
    TypeError from `compare_digest`: a receiver using `signature_valid` answered a 500."""
    from imageclassify_client.cmd_usage import signature_valid

    assert signature_valid("whsec", header, b"{}", now=1.0) is False


@pytest.mark.fast
def test_an_image_server_sending_a_non_ascii_content_length_is_read_under_the_cap(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: `Content-Length: ²` (byte 0xB2, which http.client reads as latin-1 and lets through) passed
    `str.isdigit` and then failed `int`: a ValueError, rendered as a 500."""
    from common.media import imagefetch

    configure(monkeypatch, FETCH_ALLOW_LOOPBACK="1")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(T)

    def answer() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: \xb2\r\n"
                             b"Connection: close\r\n\r\n" + b"\x89PNG" + b"\0" * 60)

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    try:
        body = imagefetch.fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/photo.png")
        assert body.startswith(b"\x89PNG")  # an unreadable length is no length: the body is read under the cap
    finally:
        listener.close()
        server.join(T)


@pytest.mark.fast
def test_a_queue_message_with_a_non_ascii_signature_is_not_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: `compare_digest` raised TypeError on a non-ASCII `sig` instead of answering False."""
    from common.core import signing

    configure(monkeypatch, INTERNAL_SECRET="a-secret")
    assert signing.verified({"kind": "webhook", "delivery": "x", signing.FIELD: "\u00e9"}) is False
    assert signing.verified({"kind": "webhook", "delivery": "x", signing.FIELD: "\udcff"}) is False
    assert signing.verified(signing.sign({"kind": "webhook", "delivery": "x"})) is True
