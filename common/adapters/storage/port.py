"""The object-storage port: list by prefix (paginated), read, write, copy.

Three adapters: `local.py` (a folder, the embedded default), `gcs.py` (Google
Cloud Storage) and `s3.py` (any S3 endpoint); `common.adapters.backends.get_storage()`
opens the configured one. Keys are bucket-relative paths such as
`users/alice/all/cat.jpg`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol, runtime_checkable

from common.core import errors

PAGE = 1000


MAX_NAME_BYTES = 255  # one segment of a key: a file name on every file system the local bucket may live on


class Object(NamedTuple):
    key: str
    size: int


class Storage(Protocol):
    scheme: str
    bucket: str

    def list(self, prefix: str, page_token: str | None = None,
             page_size: int = PAGE) -> tuple[list[Object], str | None]:
        """One page of objects under `prefix`, in key order, and the token of the next page (None at the end)."""
        ...

    def stat(self, key: str) -> Object | None:
        """The object `key` with its size, or None when there is none."""
        ...

    def read(self, key: str, max_bytes: int) -> bytes: ...
    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def copy(self, source: str, destination: str) -> None: ...

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is a 404."""
        ...


@runtime_checkable
class UploadForms(Protocol):
    """A storage a client can upload to directly (S3): for files larger than a request to a function may be."""

    def upload_form(self, key: str, max_bytes: int, expires: int) -> dict[str, Any]:
        """`{"url", "fields"}`: a form POST of the fields then `file` stores up to `max_bytes` at `key`, until
        `expires` seconds from now."""
        ...


def list_objects(storage: Storage, prefix: str) -> Iterator[Object]:
    token: str | None = None
    while True:
        objects, token = storage.list(prefix, token)
        yield from objects
        if token is None:
            return


SPACES = "users/"  # the bucket's layout: each account's space is users/<name>/ (common/files/spaces.py)
MODELS = "models/"  # the custom models' files, `models/<owner>/<name>/<version>/` (common/models/files.py)


def list_all(storage: Storage, prefix: str) -> Iterator[str]:
    return (o.key for o in list_objects(storage, prefix))


def check_key(key: str) -> str:
    """Refuse keys that could escape the bucket root or confuse a file system."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key or len(key.encode()) > 1024:
        raise errors.BadRequest(f"{key[:100]!r} is not a valid object key.", code="invalid_key")
    if any(part in ("", ".", "..") for part in key.rstrip("/").split("/")):
        raise errors.BadRequest(f"{key[:100]!r} is not a valid object key (no '.', '..' or empty segments).",
                                code="invalid_key")
    return key


def too_large(key: str, limit: int) -> errors.PayloadTooLarge:
    return errors.PayloadTooLarge(f"The object {key} is larger than {limit} bytes.")


def missing(key: str) -> errors.NotFound:
    return errors.NotFound(f"There is no object {key!r} in the bucket.", code="unknown_object")
