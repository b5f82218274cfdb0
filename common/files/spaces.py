"""Spaces: each account owns one prefix of the bucket, `users/<username>/`, and names everything relative to it.

A job's `source`, a training `source`, a `/files` path and a `uri` all land
inside the caller's space; whatever lies outside it answers 404, exactly as if
it did not exist, so one user can neither read nor overwrite another's files.
The watched upload prefix and the models folder are the operator's, outside
every space.
"""

from __future__ import annotations

from common.adapters.storage.port import MAX_NAME_BYTES, SPACES, Storage, check_key
from common.core import errors

ROOT = SPACES


def space(username: str) -> str:
    return f"{ROOT}{username}/"


def clean_path(path: str, *, folder: bool = False, what: str = "path", hidden: bool = False) -> str:
    """A relative path inside a space: no leading '/', no empty segments and none that starts with '.' (the
    laptop's bucket folder lists no dot names, so such a file would be invisible); folders end with '/'."""
    if not isinstance(path, str):
        raise errors.BadRequest(f"{what} must be a string such as \"all/\".", code=f"invalid_{what}")
    path = path.strip().lstrip("/")
    if folder and path and not path.endswith("/"):
        path += "/"
    if not path:
        return path
    parts = path.rstrip("/").split("/")
    if "\\" in path or "\x00" in path or any(c < " " for c in path) or len(path.encode()) > 900 or any(
            part in ("", ".", "..") or (part.startswith(".") and not hidden) or len(part.encode()) > MAX_NAME_BYTES
            for part in parts):
        raise errors.BadRequest(f"{what} {path[:100]!r} is not allowed: use a relative path of names separated by "
                                f"'/', none empty, none starting with '.', each at most {MAX_NAME_BYTES} bytes.",
                                code=f"invalid_{what}")
    return path


def key(username: str, path: str, *, existing: bool = False) -> str:
    """The bucket key of a file's path in a user's space (a path ending in '/' names a folder: a 400). A file
    that is `existing` (read or deleted, not created) may have a name starting with '.': a bucket may hold
    such files from before the rule or from elsewhere, and their owner must be able to remove them."""
    if isinstance(path, str) and path.strip().endswith("/"):
        raise errors.BadRequest(f"{path[:100]!r} names a folder; name a file: <folder>/<name>.", code="invalid_path")
    return check_key(space(username) + clean_path(path, hidden=existing))


def relative(username: str, key: str) -> str:
    """The path of a key as its owner names it."""
    prefix = space(username)
    return key[len(prefix):] if key.startswith(prefix) else key


def key_from_uri(uri: str, username: str, storage: Storage) -> str:
    """The key a `gs://` or `s3://` URI names, when it lies in the caller's space; anything else is a 404."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, name = rest.partition("/")
    if not sep or scheme not in ("gs", "s3"):
        raise errors.BadRequest("uri must look like gs://BUCKET/users/<you>/PATH or s3://BUCKET/users/<you>/PATH.",
                                code="invalid_uri")
    prefix = space(username)
    if scheme != storage.scheme or bucket != storage.bucket or not name.startswith(prefix):
        raise errors.NotFound(f"There is no object {uri[:200]!r} in your space ({storage.scheme}://{storage.bucket}/"
                              f"{prefix}).", code="unknown_object")
    return key(username, name[len(prefix):], existing=True)
