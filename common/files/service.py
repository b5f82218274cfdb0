"""`/files`: put, list, read and delete the images of the caller's space, within a per-account quota.

Only images go in (recognised by their first bytes, before anything is
stored): the space feeds sort jobs and training. The quota is counted in the
store as files pass through here and as sort jobs write their outputs
(`common/jobs/sorting.py`), with a size record per file that keeps the usage equal
to what is stored whatever the interleaving (`common/records/usage.py`); files
an operator drops straight into the bucket folder are not counted.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from common.adapters.deps import Deps
from common.adapters.storage.port import Storage, UploadForms
from common.core import errors
from common.files import spaces
from common.media import imagetypes
from common.records.records import Account

PAGE_MAX = 1000
UPLOAD_FORM_SECONDS = 60  # far inside the space write's lease, after which the sweeper counts what was stored
log = logging.getLogger("imageclassify.files")


def image_type(data: bytes) -> str:
    """The media type of image bytes, or a 415 that says what can be stored."""
    kind = imagetypes.media_type(data)
    if kind is None:
        raise errors.UnsupportedMediaType(f"Only images can be stored in your space: send a {imagetypes.READ} "
                                          "file as the raw request body.", code="not_an_image")
    return kind


def size_in(storage: Storage, key: str) -> int | None:
    """What `storage` holds at `key` now: the probe the usage rules count with."""
    found = storage.stat(key)
    return None if found is None else found.size


def sizer(storage: Storage) -> Callable[[str], int | None]:
    """`size_in` that storage: the probe a usage rule is handed."""
    return functools.partial(size_in, storage)


@contextmanager
def counted_write(owner: str, key: str, size: int, limits: tuple[int, int] | None, deps: Deps) -> Iterator[None]:
    """Change the storage at `key` inside the usage's open and close (`common/records/usage.py`): the bytes are
    reserved first (403 `quota_exceeded` past `limits`), and afterwards, written or not, what is stored is
    counted. A close that cannot be made now is left to the sweeper, which makes it after the lease."""
    store, op_id = deps.store, f"{owner}:{uuid.uuid4().hex}"
    stored_size = sizer(deps.storage)
    store.open_space_write(owner, key, size, op_id, stored_size, limits)
    try:
        yield
    except BaseException:
        _quietly(lambda: store.close_space_write(op_id, owner, key, stored_size))  # the write's error is the one
        raise
    store.close_space_write(op_id, owner, key, stored_size)


def _quietly(close: Callable[[], None]) -> None:
    try:
        close()
    except Exception:  # noqa: BLE001 - the sweeper closes it after its lease
        log.exception("could not count a space write now; the sweeper will")


def put(account: Account, path: str, data: bytes, deps: Deps) -> dict[str, Any]:
    if not data:
        raise errors.BadRequest("The body is empty: send the file's bytes.", code="empty_file")
    key, media_type = spaces.key(account.username, path), image_type(data)
    s = deps.settings
    with counted_write(account.username, key, len(data), (s.storage.space_max_bytes, s.storage.space_max_files), deps):
        deps.storage.write(key, data, media_type)
    return {"path": spaces.relative(account.username, key), "size": len(data)}


FILENAME = "${filename}"  # S3's placeholder for the uploaded file's own name, in a POST form's key


def upload_form(account: Account, path: str, size: Any, deps: Deps) -> dict[str, Any]:
    """A form to upload a file of up to `size` bytes straight to S3, for images larger than a function URL takes.
    The bytes are reserved in the quota now and never closed here: the sweeper closes the write after its lease
    (`common/records/usage.py`), counting what the upload stored, and the form expires long before that."""
    storage, s = deps.storage, deps.settings
    if not isinstance(storage, UploadForms):
        raise errors.BadRequest("Upload forms exist on S3 storage only (on AWS, where a function URL takes about "
                                "4.5 MB of image). Here, PUT the image to /files/<path>.", code="no_upload_form")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise errors.BadRequest("Send {\"size\": <the file's size in bytes>} (a positive integer).",
                                code="invalid_size")
    if size > s.storage.image_max_bytes:
        raise errors.PayloadTooLarge(f"An image may have at most {s.storage.image_max_bytes} bytes.")
    key = spaces.key(account.username, path)
    if key.endswith(FILENAME):  # S3 would sign a `starts-with` policy: one form for any number of keys, uncounted
        raise errors.BadRequest(f"A path for an upload form may not end in {FILENAME}: name the file itself.",
                                code="invalid_path")
    store = deps.store
    store.open_space_write(account.username, key, size, f"{account.username}:{uuid.uuid4().hex}",
                           lambda k: size_in(storage, k), (s.storage.space_max_bytes, s.storage.space_max_files))
    form = storage.upload_form(key, size, UPLOAD_FORM_SECONDS)
    return {"path": spaces.relative(account.username, key), "max_bytes": size, "expires_in": UPLOAD_FORM_SECONDS,
            "upload": form}


def listing(account: Account, prefix: str, page_token: str | None, limit: int, deps: Deps) -> dict[str, Any]:
    folder = spaces.space(account.username) + spaces.clean_path(prefix, what="prefix")
    objects, token = deps.storage.list(folder, page_token or None, max(1, min(limit, PAGE_MAX)))
    return {"files": [{"path": spaces.relative(account.username, o.key), "size": o.size} for o in objects],
            "next": token}


def read(account: Account, path: str, deps: Deps) -> tuple[bytes, str]:
    data = deps.storage.read(spaces.key(account.username, path, existing=True), deps.settings.http.max_body_bytes)
    try:
        return data, image_type(data)
    except errors.UnsupportedMediaType:
        return data, "application/octet-stream"


def delete(account: Account, path: str, deps: Deps) -> None:
    key = spaces.key(account.username, path, existing=True)
    if deps.storage.stat(key) is None:
        raise errors.NotFound(f"There is no file {path[:200]!r} in your space.", code="unknown_object")
    with counted_write(account.username, key, 0, None, deps):
        deps.storage.delete(key)
