"""`/files`: the caller's space of the bucket, on the local folder, fake-gcs-server and moto's S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra import photos
from tests.conftest import Api, bearer, make_api, new_bucket

PNG = photos.data("coffee.png")


@pytest.fixture(scope="module", params=["local", "gcs", "s3"])
def files_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp(f"files-{request.param}")
    api = make_api(request, tmp_path_factory, "sqlite", SPACE_MAX_FILES="6", SPACE_MAX_BYTES=str(3 * len(PNG) + 10),
                   MAX_BODY_BYTES=str(2 * 1024 * 1024), **new_bucket(str(request.param), request, tmp))
    yield api
    api.stop()


def url(api: Api, path: str = "") -> str:
    return api.url("files_api", "/files" + path)


def test_put_list_read_delete(files_api: Api) -> None:
    user = files_api.register()
    r = requests.put(url(files_api, "/cats/a b+1.png"), data=PNG, headers=bearer(user))
    assert r.status_code == 201 and r.json() == {"path": "cats/a b+1.png", "size": len(PNG)}, r.text
    assert requests.put(url(files_api, "/dogs/x.jpg"), data=photos.data("grace_hopper.jpg"),
                        headers=bearer(user)).status_code == 201
    listing = requests.get(url(files_api), params={"prefix": "cats/"}, headers=bearer(user)).json()
    assert listing == {"files": [{"path": "cats/a b+1.png", "size": len(PNG)}], "next": None}
    first = requests.get(url(files_api), params={"limit": "1"}, headers=bearer(user)).json()
    assert len(first["files"]) == 1 and first["next"]
    rest = requests.get(url(files_api), params={"limit": "1", "next": first["next"]}, headers=bearer(user)).json()
    assert rest["files"][0]["path"] != first["files"][0]["path"]
    got = requests.get(url(files_api, "/cats/a b+1.png"), headers=bearer(user))
    assert got.status_code == 200 and got.content == PNG and got.headers["Content-Type"] == "image/png"
    assert requests.delete(url(files_api, "/cats/a b+1.png"), headers=bearer(user)).status_code == 204
    assert requests.get(url(files_api, "/cats/a b+1.png"), headers=bearer(user)).status_code == 404
    assert requests.delete(url(files_api, "/cats/a b+1.png"), headers=bearer(user)).status_code == 404
    for method in ("GET", "DELETE"):  # a trailing '/' names a folder, on every backend (the disk once ignored it)
        r = requests.request(method, url(files_api, "/dogs/x.jpg/"), headers=bearer(user))
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path", r.text


def test_another_users_files_are_404(files_api: Api) -> None:
    owner, other = files_api.register(), files_api.register()
    requests.put(url(files_api, "/secret.png"), data=PNG, headers=bearer(owner))
    assert requests.get(url(files_api, "/secret.png"), headers=bearer(other)).status_code == 404
    assert requests.delete(url(files_api, "/secret.png"), headers=bearer(other)).status_code == 404
    assert requests.get(url(files_api), headers=bearer(other)).json()["files"] == []
    for hostile in (f"/../{owner['username']}/secret.png", f"/..%2F{owner['username']}%2Fsecret.png"):
        r = requests.get(url(files_api, hostile), headers=bearer(other))
        assert r.status_code in (400, 404), r.text
    assert requests.get(url(files_api, "/secret.png"), headers=bearer(owner)).content == PNG
    assert requests.get(url(files_api, "/secret.png")).status_code == 401


@pytest.mark.parametrize("path, body, status, code", [
    ("/notes.txt", b"just text", 415, "not_an_image"),
    ("/empty.png", b"", 400, "empty_file"),
    ("/folder/", PNG, 400, "invalid_path"),
    ("/a/%2E%2E/%2E%2E/b.png", PNG, 400, "invalid_path"),
    ("/a//b.png", PNG, 400, "invalid_path"),
    ("/.hidden.png", PNG, 400, "invalid_path"),
    ("/a/.tmp-evil", PNG, 400, "invalid_path"),
    ("/" + "a" * 252 + ".png", PNG, 400, "invalid_path"),
], ids=["text", "empty", "folder", "dot-dot", "empty-segment", "hidden", "temp-name", "long-name"])
def test_bad_uploads(files_api: Api, path: str, body: bytes, status: int, code: str) -> None:
    user = files_api.register()
    r = requests.put(url(files_api, path), data=body, headers=bearer(user))
    assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    assert requests.get(url(files_api), headers=bearer(user)).json()["files"] == []


def test_oversized_body_is_413(files_api: Api) -> None:
    user = files_api.register()
    r = requests.put(url(files_api, "/big.png"), data=b"\x89PNG\r\n\x1a\n" + b"0" * (3 * 1024 * 1024),
                     headers=bearer(user))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


def test_quota(files_api: Api, tmp_path: Path) -> None:
    user = files_api.register()
    for i in range(3):
        assert requests.put(url(files_api, f"/q/{i}.png"), data=PNG, headers=bearer(user)).status_code == 201
    r = requests.put(url(files_api, "/q/3.png"), data=PNG, headers=bearer(user))
    assert r.status_code == 403 and r.json()["error"]["code"] == "quota_exceeded", r.text
    assert requests.put(url(files_api, "/q/0.png"), data=PNG, headers=bearer(user)).status_code == 201  # replace
    assert requests.delete(url(files_api, "/q/0.png"), headers=bearer(user)).status_code == 204
    assert requests.put(url(files_api, "/q/3.png"), data=PNG, headers=bearer(user)).status_code == 201


def test_a_file_and_a_folder_of_one_name(files_api: Api) -> None:
    """A bucket holds `x.png` and `x.png/y.png` side by side; a folder on disk cannot: 409, nothing left behind."""
    user = files_api.register()
    assert requests.put(url(files_api, "/x/y.png"), data=PNG, headers=bearer(user)).status_code == 201
    for path in ("/x/y.png/z.png", "/x"):
        r = requests.put(url(files_api, path), data=PNG, headers=bearer(user))
        if files_api.env.get("STORAGE_BACKEND") == "local":
            assert r.status_code == 409 and r.json()["error"]["code"] == "path_conflict", r.text
        else:
            assert r.status_code == 201, r.text
    if files_api.env.get("STORAGE_BACKEND") == "local":
        bucket = Path(files_api.env["BUCKET_DIR"])
        assert not list((bucket / ".tmp").iterdir()) and not list(bucket.rglob("users/**/.*"))  # nothing leaked
        for i in range(2):  # the refused writes took no room: the quota (3 files of this size) still has two
            assert requests.put(url(files_api, f"/q{i}.png"), data=PNG, headers=bearer(user)).status_code == 201


def test_an_existing_hidden_file_can_be_read_and_deleted(files_api: Api) -> None:
    """Names starting with '.' cannot be created here, but a bucket may hold some (from before the rule, or
    written elsewhere): their owner can still read and remove them."""
    from tests.test_sort_jobs import storage_client

    user = files_api.register()
    storage_client(files_api.env).write(f"users/{user['username']}/old/.hidden.png", PNG)
    assert requests.get(url(files_api, "/old/.hidden.png"), headers=bearer(user)).content == PNG
    assert requests.delete(url(files_api, "/old/.hidden.png"), headers=bearer(user)).status_code == 204
    assert requests.get(url(files_api, "/old/.hidden.png"), headers=bearer(user)).status_code == 404
    r = requests.put(url(files_api, "/old/.hidden.png"), data=PNG, headers=bearer(user))
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_path"
    assert requests.get(url(files_api, "/old/../x.png"), headers=bearer(user)).status_code in (400, 404)


def test_an_upload_form_only_on_s3(files_api: Api) -> None:
    """POST /files/<path> {"size"}: on S3 a form to upload straight to the bucket (for more than a function URL
    takes on AWS; tests/test_lambda_handlers.py uploads through one); elsewhere a PUT takes the image itself."""
    user = files_api.register()
    r = requests.post(url(files_api, "/big/a.png"), json={"size": 1000}, headers=bearer(user), timeout=30)
    if files_api.env["STORAGE_BACKEND"] != "s3":
        assert (r.status_code, r.json()["error"]["code"]) == (400, "no_upload_form"), r.text
        assert "PUT the image to /files/<path>" in r.json()["error"]["message"]
        return
    assert r.status_code == 201 and r.json()["upload"]["fields"]["key"] == f"users/{user['username']}/big/a.png"
    assert requests.get(url(files_api), headers=bearer(user), timeout=30).json()["files"] == []
    over = requests.post(url(files_api, "/big/b.png"), json={"size": 3 * len(PNG) + 11}, headers=bearer(user),
                         timeout=30)
    assert (over.status_code, over.json()["error"]["code"]) == (403, "quota_exceeded"), over.text
    assert requests.post(url(files_api), json={"size": 1}, headers=bearer(user), timeout=30).status_code == 405
