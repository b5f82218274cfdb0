"""The object-storage port: list by prefix (paginated), read, write, copy.

Three adapters: `local.py` (a folder, the embedded default), `gcs.py` (Google
Cloud Storage) and `s3.py` (any S3 endpoint); `common.backends.get_storage()`
opens the configured one. Keys are bucket-relative paths such as
`users/alice/all/cat.jpg`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from common import errors

PAGE = 1000


class Storage(Protocol):
    scheme: str
    bucket: str

    def list(self, prefix: str, page_token: str | None = None, page_size: int = PAGE) -> tuple[list[str], str | None]:
        """One page of keys under `prefix`, in key order, and the token of the next page (None at the end)."""
        ...

    def read(self, key: str, max_bytes: int) -> bytes: ...
    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def copy(self, source: str, destination: str) -> None: ...


def list_all(storage: Storage, prefix: str) -> Iterator[str]:
    token: str | None = None
    while True:
        keys, token = storage.list(prefix, token)
        yield from keys
        if token is None:
            return


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


def key_from_uri(uri: str, storage: Storage) -> str:
    """The key inside our bucket that a `gs://` or `s3://` URI names; other buckets are refused."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not sep or scheme not in ("gs", "s3"):
        raise errors.BadRequest("uri must look like gs://BUCKET/KEY or s3://BUCKET/KEY.", code="invalid_uri")
    if scheme != storage.scheme or bucket != storage.bucket:
        raise errors.Forbidden(f"Only objects in {storage.scheme}://{storage.bucket}/ can be classified by uri.",
                               code="bucket_not_allowed")
    return check_key(key)
