"""Google Cloud Storage (or fake-gcs-server through STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

import os

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]

from common.adapters.storage.port import PAGE, Object, check_key, missing, too_large


class GcsStorage:
    scheme = "gs"

    def __init__(self, bucket: str, project: str) -> None:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            self.client = storage.Client(project=project, credentials=AnonymousCredentials())
        else:
            self.client = storage.Client(project=project)
        self.bucket = bucket
        self._bucket = self.client.bucket(bucket)

    def list(self, prefix: str, page_token: str | None = None,
             page_size: int = PAGE) -> tuple[list[Object], str | None]:
        blobs = self.client.list_blobs(self.bucket, prefix=prefix, page_size=page_size, page_token=page_token)
        page = next(blobs.pages, None)
        if page is None:
            return [], None
        objects = [Object(blob.name, int(blob.size or 0)) for blob in page if not blob.name.endswith("/")]
        return objects, blobs.next_page_token or None

    def stat(self, key: str) -> Object | None:
        blob = self._bucket.get_blob(check_key(key))
        return None if blob is None else Object(key, int(blob.size or 0))

    def read(self, key: str, max_bytes: int) -> bytes:
        blob = self._bucket.get_blob(check_key(key))
        if blob is None:
            raise missing(key)
        if blob.size is not None and blob.size > max_bytes:
            raise too_large(key, max_bytes)
        try:
            return bytes(blob.download_as_bytes())
        except gexc.NotFound:
            raise missing(key) from None

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self._bucket.blob(check_key(key)).upload_from_string(data, content_type=content_type)

    def delete(self, key: str) -> None:
        try:
            self._bucket.delete_blob(check_key(key))
        except gexc.NotFound:
            raise missing(key) from None

    def copy(self, source: str, destination: str) -> None:
        try:
            self._bucket.copy_blob(self._bucket.blob(check_key(source)), self._bucket, check_key(destination))
        except gexc.NotFound:
            raise missing(source) from None
