"""Contract suite of the storage port, on the local folder, fake-gcs-server and moto's S3."""

from __future__ import annotations

import pytest

from common.adapters.storage.port import list_all
from common.core import errors


def test_write_read_copy(storage) -> None:
    storage.write("all/a.jpg", b"alpha", "image/jpeg")
    assert storage.read("all/a.jpg", 100) == b"alpha"
    storage.copy("all/a.jpg", "dog/a.jpg")
    assert storage.read("dog/a.jpg", 100) == b"alpha"
    storage.write("all/a.jpg", b"beta")
    assert storage.read("all/a.jpg", 100) == b"beta"


def test_stat(storage) -> None:
    storage.write("users/a/x.png", b"12345")
    storage.write("users/a/x.png2", b"1")
    storage.write("users/a/.hidden", b"123")  # listings of the local folder skip dot names; stat does not
    assert storage.stat("users/a/x.png") == ("users/a/x.png", 5)
    assert storage.stat("users/a/.hidden") == ("users/a/.hidden", 3)
    assert storage.stat("users/a/x.pn") is None and storage.stat("users/a") is None
    assert storage.stat("users/b/x.png") is None


def test_delete(storage) -> None:
    storage.write("users/a/x.png", b"x")
    storage.delete("users/a/x.png")
    with pytest.raises(errors.NotFound):
        storage.read("users/a/x.png", 10)
    with pytest.raises(errors.NotFound):
        storage.delete("users/a/x.png")


def test_missing_and_too_large(storage) -> None:
    with pytest.raises(errors.NotFound):
        storage.read("nothing/here.png", 100)
    with pytest.raises(errors.NotFound):
        storage.copy("nothing/here.png", "x/here.png")
    storage.write("big.bin", b"x" * 1000)
    with pytest.raises(errors.PayloadTooLarge):
        storage.read("big.bin", 999)


def test_list_by_prefix_paginated(storage) -> None:
    keys = [f"all/img{i:03d}.png" for i in range(25)] + ["all/sub/deep.png", "allx/no.png", "other/no.png"]
    for key in keys:
        storage.write(key, b"x")
    page, token = storage.list("all/", None, 10)
    assert len(page) == 10 and token
    everything = []
    while True:
        everything += page
        if token is None:
            break
        page, token = storage.list("all/", token, 10)
    assert sorted(o.key for o in everything) == sorted(k for k in keys if k.startswith("all/"))
    assert all(o.size == 1 for o in everything)
    assert sorted(list_all(storage, "all/")) == sorted(o.key for o in everything)
    assert list(list_all(storage, "empty/")) == []


@pytest.mark.parametrize("key", ["../etc/passwd", "/etc/passwd", "a/../../b", "a//b", "a/./b", "", "a\\b", "a\x00b"])
def test_hostile_keys(storage, key: str) -> None:
    with pytest.raises(errors.BadRequest):
        storage.write(key, b"x")
    with pytest.raises(errors.BadRequest):
        storage.read(key, 10)


def test_local_temporary_files_stay_out_of_the_spaces_and_stale_ones_go(tmp_path) -> None:
    """A write killed midway leaves its temporary file in the bucket's .tmp/, never in a user's folder; the next
    process to open the bucket removes it once it is an hour old."""
    import os
    import time

    from common.adapters.storage.local import LocalStorage

    local = LocalStorage(tmp_path / "bucket", "b")
    stale, fresh = local.tmp / "w-killed", local.tmp / "w-in-flight"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    LocalStorage(tmp_path / "bucket", "b")
    assert not stale.exists() and fresh.exists()
    local.write("users/a/x.png", b"1")
    local.copy("users/a/x.png", "users/a/cat/x.png")
    assert list(local.tmp.iterdir()) == [fresh] and local.list("users/") == (
        [("users/a/cat/x.png", 1), ("users/a/x.png", 1)], None)


def test_local_root_cannot_be_escaped_by_symlink(tmp_path) -> None:
    from common.adapters.storage.local import LocalStorage

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    local = LocalStorage(tmp_path / "bucket", "b")
    (tmp_path / "bucket" / "link").symlink_to(outside)
    with pytest.raises(errors.NotFound):
        local.read("link/secret.txt", 100)


def test_uri_must_name_our_bucket_and_the_callers_space(storage) -> None:
    from common.files.spaces import key_from_uri

    base = f"{storage.scheme}://{storage.bucket}"
    assert key_from_uri(f"{base}/users/alice/all/a.png", "alice", storage) == "users/alice/all/a.png"
    for uri in (f"{storage.scheme}://someone-else/users/alice/all/a.png", f"{base}/users/bob/all/a.png",
                f"{base}/all/a.png", f"{base}/users/alicex/a.png"):
        with pytest.raises(errors.NotFound):
            key_from_uri(uri, "alice", storage)
    with pytest.raises(errors.BadRequest):
        key_from_uri(f"{base}/users/alice/../bob/x", "alice", storage)
    with pytest.raises(errors.BadRequest):
        key_from_uri("ftp://x/y", "alice", storage)
