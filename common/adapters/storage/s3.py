"""S3, or any S3-compatible endpoint (AWS_ENDPOINT_URL, e.g. moto_server or MinIO)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from common.adapters import aws
from common.adapters.storage.port import PAGE, Object, check_key, missing, too_large


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


class S3Storage:
    scheme = "s3"

    def __init__(self, bucket: str) -> None:
        self.client: Any = aws.client("s3")
        self.bucket = bucket

    def list(self, prefix: str, page_token: str | None = None,
             page_size: int = PAGE) -> tuple[list[Object], str | None]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": page_size}
        if page_token:
            kwargs["ContinuationToken"] = page_token
        page = self.client.list_objects_v2(**kwargs)
        objects = [Object(o["Key"], int(o["Size"])) for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        return objects, page.get("NextContinuationToken") if page.get("IsTruncated") else None

    def stat(self, key: str) -> Object | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _not_found(exc):
                return None
            raise
        return Object(key, int(head["ContentLength"]))

    def read(self, key: str, max_bytes: int) -> bytes:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if _not_found(exc):
                raise missing(key) from None
            raise
        if obj["ContentLength"] > max_bytes:
            obj["Body"].close()
            raise too_large(key, max_bytes)
        return bytes(obj["Body"].read())

    def write(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=check_key(key), Body=data, ContentType=content_type)

    def delete(self, key: str) -> None:
        if self.stat(key) is None:
            raise missing(key)
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def upload_form(self, key: str, max_bytes: int, expires: int) -> dict[str, Any]:
        """A presigned POST: S3 itself refuses a file over `max_bytes` or after `expires` seconds."""
        form: dict[str, Any] = self.client.generate_presigned_post(
            self.bucket, check_key(key), Conditions=[["content-length-range", 1, max_bytes]], ExpiresIn=expires)
        return {"url": form["url"], "fields": form["fields"]}

    def copy(self, source: str, destination: str) -> None:
        try:
            self.client.copy_object(Bucket=self.bucket, Key=check_key(destination),
                                    CopySource={"Bucket": self.bucket, "Key": check_key(source)})
        except ClientError as exc:
            if _not_found(exc):
                raise missing(source) from None
            raise
