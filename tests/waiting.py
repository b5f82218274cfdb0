"""Waiting on observable state: the one polling loop of the suite, and the HTTP timeout every test call carries.

Tests run on a loaded 2-core CI machine, so they wait for a state they can see (a job finished, a queue drained)
within a generous bound, and never sleep to prove that something did not happen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import requests

T = TypeVar("T")

HTTP_TIMEOUT = 60  # seconds: generous for a loaded machine, finite so a hung server fails the test, not the run


def wait_until(predicate: Callable[[], T | None], timeout: float = 60, message: str | Callable[[], Any] = "",
               interval: float = 0.1) -> T:
    """Poll `predicate` until it returns something truthy and return that; fail with `message` after `timeout`.

    `message` may be a callable, evaluated only on failure, to show the last state seen.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout}s: {detail}")
        time.sleep(interval)


def wait_for_status(fetch: Callable[[], dict], statuses: Collection[str], timeout: float = 120,
                    interval: float = 0.3) -> dict:
    """The record `fetch` returns once its status is one of `statuses` (a job finished, a model trained); a record
    still in another status after `timeout` fails the test and shows it."""
    seen: list[dict] = [{}]

    def settled() -> dict | None:
        seen[0] = fetch()
        return seen[0] if seen[0].get("status") in statuses else None

    return wait_until(settled, timeout, lambda: seen[0], interval)


def default_http_timeout() -> None:
    """Give every requests call made without `timeout=` the suite's bound, so no test can hang on a socket."""
    if getattr(requests.Session.request, "_has_default_timeout", False):
        return
    original = requests.Session.request

    def request(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = HTTP_TIMEOUT
        return original(self, method, url, *args, **kwargs)

    request._has_default_timeout = True  # type: ignore[attr-defined]
    requests.Session.request = request  # type: ignore[method-assign, assignment]
