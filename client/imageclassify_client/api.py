"""The HTTP contract as Python calls: one method per endpoint, errors as `ApiError`.

Retries: a 503 (database contention) is retried after its Retry-After for
idempotent methods (GET, PUT, DELETE) and for POSTs that carry an
Idempotency-Key, where the server replays instead of charging twice. Other
POSTs are sent once: retrying them could create or charge twice.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from imageclassify_client import __version__
from imageclassify_client.errors import ApiError, ConnectionFailed, UsageProblem

TIMEOUT = (5.0, 300.0)  # connect, read: a batch of 16 large photos can take a while on a small instance
RETRIES = 4
MAX_RETRY_AFTER = 30.0


class CappedRetry(Retry):
    """urllib3's Retry, but a Retry-After longer than `MAX_RETRY_AFTER` seconds is not slept in full."""

    def get_retry_after(self, response: Any) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, MAX_RETRY_AFTER)


def _session(methods: frozenset[str]) -> requests.Session:
    retry = CappedRetry(total=RETRIES, connect=1, read=0, status=RETRIES, status_forcelist=[503],
                        allowed_methods=methods, respect_retry_after_header=True, backoff_factor=0.2,
                        raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers["User-Agent"] = f"imageclassify-cli/{__version__}"
    return session


def file_url(path: str) -> str:
    return "/files/" + quote(path.lstrip("/"), safe="/")


class Client:
    """One API, one (optional) key."""

    def __init__(self, api: str, key: str | None = None) -> None:
        self.api, self.key = api.rstrip("/"), key
        self._plain = _session(frozenset(Retry.DEFAULT_ALLOWED_METHODS))
        self._keyed = _session(frozenset(Retry.DEFAULT_ALLOWED_METHODS | {"POST"}))

    # -- transport ------------------------------------------------------------------------
    def request(self, method: str, path: str, *, auth: tuple[str, str] | None = None, keyed: bool = True,
                headers: dict[str, str] | None = None, **kwargs: Any) -> requests.Response:
        """Send one request; a refusal raises `ApiError` with the server's message."""
        headers = dict(headers or {})
        if auth is None and keyed:
            if not self.key:
                raise UsageProblem("No API key. Run `imageclassify register NAME` or `imageclassify login NAME`, "
                                   "or pass --key / set IMAGECLASSIFY_KEY.")
            headers["Authorization"] = f"Bearer {self.key}"
        session = self._keyed if "Idempotency-Key" in headers else self._plain
        url = self.api + path
        try:
            response = session.request(method, url, auth=auth, headers=headers, timeout=TIMEOUT, **kwargs)
        except requests.exceptions.Timeout:
            raise ConnectionFailed(f"The API at {self.api} did not answer in time. Retry later.") from None
        except requests.exceptions.RequestException as exc:
            raise ConnectionFailed(f"Cannot reach the API at {self.api} ({_reason(exc)}). Is the server running? "
                                   "Set --api or IMAGECLASSIFY_API to its URL.") from None
        if response.status_code >= 400:
            raise refusal(response)
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise ApiError(response.status_code, "invalid_reply",
                           f"{self.api}{path} did not answer with JSON; is {self.api} the ImageClassify API?") from None

    # -- accounts ---------------------------------------------------------------------------
    def register(self, username: str, password: str) -> dict[str, Any]:
        return dict(self.json("POST", "/register", keyed=False, json={"username": username, "password": password}))

    def new_key(self, username: str, password: str) -> dict[str, Any]:
        return dict(self.json("POST", "/api-key", auth=(username, password)))

    def balance(self) -> dict[str, Any]:
        return dict(self.json("GET", "/tokens"))

    def keys(self) -> list[dict[str, Any]]:
        return list(self.json("GET", "/keys").get("keys") or [])

    def create_key(self, name: str, scope: str) -> dict[str, Any]:
        return dict(self.json("POST", "/keys", json={"name": name, "scope": scope}))

    def revoke_key(self, key_id: str) -> None:
        self.request("DELETE", f"/keys/{quote(key_id, safe='')}")

    def change_password(self, old: str, new: str, revoke_keys: bool) -> None:
        self.request("POST", "/password", json={"old_password": old, "new_password": new, "revoke_keys": revoke_keys})

    def delete_account(self, password: str) -> dict[str, Any]:
        return dict(self.json("DELETE", "/account", json={"password": password}))

    # -- classify -------------------------------------------------------------------------
    def classify_batch(self, images: list[dict[str, str]], **options: Any) -> dict[str, Any]:
        """`POST /classify` with `images: [...]`; a fresh Idempotency-Key makes a retry free."""
        body = {"images": images, **{k: v for k, v in options.items() if v is not None}}
        return dict(self.json("POST", "/classify", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}))

    # -- files ----------------------------------------------------------------------------
    def list_files(self, prefix: str) -> list[dict[str, Any]]:
        """Every file under `prefix`, following the `next` page marker."""
        files: list[dict[str, Any]] = []
        params: dict[str, str] = {"prefix": prefix}
        for _ in range(100_000):
            page = self.json("GET", "/files", params=params)
            files.extend(page.get("files") or [])
            marker = page.get("next")
            if not marker:
                return files
            params = {"prefix": prefix, "next": str(marker)}
        raise ApiError(500, "endless_listing", "The file listing did not end; report this to the operator.")

    def put_file(self, path: str, data: bytes, content_type: str) -> dict[str, Any]:
        return dict(self.json("PUT", file_url(path), data=data, headers={"Content-Type": content_type}))

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.json("POST", "/jobs", json=body))

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.json("GET", f"/jobs/{quote(job_id, safe='')}"))

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return dict(self.json("DELETE", f"/jobs/{quote(job_id, safe='')}"))

    # -- models ---------------------------------------------------------------------------
    def create_model(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.json("POST", "/models", json=body))

    def models(self) -> list[dict[str, Any]]:
        return list(self.json("GET", "/models").get("models") or [])

    def model(self, name: str) -> dict[str, Any]:
        return dict(self.json("GET", f"/models/{quote(name, safe='')}"))

    def confusion_png(self, name: str) -> bytes:
        return self.request("GET", f"/models/{quote(name, safe='')}/confusion.png").content

    def delete_model(self, name: str) -> None:
        self.request("DELETE", f"/models/{quote(name, safe='')}")


def refusal(response: requests.Response) -> ApiError:
    """The error envelope of a refused request, or a plain description when the reply has none."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return ApiError(int(error.get("status") or response.status_code), str(error.get("code") or "error"),
                        error["message"], error)
    reason = response.reason or "error"
    return ApiError(response.status_code, "http_error",
                    f"{response.request.method} {response.url} failed: HTTP {response.status_code} {reason}.")


def _reason(exc: requests.exceptions.RequestException) -> str:
    text = str(exc)
    for hint in ("Connection refused", "Name or service not known", "No route to host", "timed out",
                 "Temporary failure in name resolution", "Connection reset"):
        if hint in text:
            return hint.lower()
    return type(exc).__name__
