"""`/files`: put, list, read and delete the images of the caller's space, within a per-account quota.

Only images go in (recognised by their first bytes, before anything is
stored): the space feeds sort jobs and training. The quota is counted in the
store as files pass through here and as sort jobs write their outputs
(`common/sorting.py`); files an operator drops straight into the bucket folder
are not counted.
"""

from __future__ import annotations

from typing import Any

from common import errors, imagetypes, spaces
from common.backends import get_storage, get_store
from common.config import settings
from common.store.records import Account

PAGE_MAX = 1000


def image_type(data: bytes) -> str:
    """The media type of image bytes, or a 415 that says what can be stored."""
    kind = imagetypes.media_type(data)
    if kind is None:
        raise errors.UnsupportedMediaType("Only images can be stored in your space: send a JPEG, PNG, GIF, WebP, "
                                          "BMP or TIFF file as the raw request body.", code="not_an_image")
    return kind


def growth(key: str, size: int) -> tuple[int, int]:
    """What writing `size` bytes at `key` adds to its owner's usage: (bytes, files); replacing a file adds no
    file. Read before the write (the upload here, a sort job's output in `common/sorting.py`)."""
    replaced = get_storage().stat(key)
    return (size - replaced.size, 0) if replaced else (size, 1)


def put(account: Account, path: str, data: bytes) -> dict[str, Any]:
    if not data:
        raise errors.BadRequest("The body is empty: send the file's bytes.", code="empty_file")
    key, media_type = spaces.key(account.username, path), image_type(data)
    added_bytes, added_files = growth(key, len(data))
    s, store = settings(), get_store()
    store.change_usage(account.username, added_bytes, added_files, s.space_max_bytes, s.space_max_files)
    try:
        get_storage().write(key, data, media_type)
    except BaseException:
        store.change_usage(account.username, -added_bytes, -added_files, s.space_max_bytes, s.space_max_files)
        raise
    return {"path": spaces.relative(account.username, key), "size": len(data)}


def listing(account: Account, prefix: str, page_token: str | None, limit: int) -> dict[str, Any]:
    folder = spaces.space(account.username) + spaces.clean_path(prefix, what="prefix")
    objects, token = get_storage().list(folder, page_token or None, max(1, min(limit, PAGE_MAX)))
    return {"files": [{"path": spaces.relative(account.username, o.key), "size": o.size} for o in objects],
            "next": token}


def read(account: Account, path: str) -> tuple[bytes, str]:
    data = get_storage().read(spaces.key(account.username, path, existing=True), settings().max_body_bytes)
    try:
        return data, image_type(data)
    except errors.UnsupportedMediaType:
        return data, "application/octet-stream"


def delete(account: Account, path: str) -> None:
    key = spaces.key(account.username, path, existing=True)
    old = get_storage().stat(key)
    if old is None:
        raise errors.NotFound(f"There is no file {path[:200]!r} in your space.", code="unknown_object")
    get_storage().delete(key)
    s = settings()
    get_store().change_usage(account.username, -old.size, -1, s.space_max_bytes, s.space_max_files)
