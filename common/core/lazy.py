"""A process-wide client created on first use, like the module-level clients of Google's function samples.

Creating a client at import time would add its cost to every cold start, even
for requests that never use it; creating one per request would waste its
connections. `Lazy` creates it once, on first use, safely across threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class Lazy(Generic[T]):
    def __init__(self, factory: Callable[[], T], close: Callable[[T], None] | None = None) -> None:
        self._factory, self._close = factory, close
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
                value = self._value
        return value

    def reset(self) -> None:
        """Forget the client (tests switch backends between suites)."""
        with self._lock:
            if self._value is not None and self._close is not None:
                self._close(self._value)
            self._value = None


class PerKey(Generic[K, T]):
    """One value per key, made on first use by `factory(key)` and kept for the life of the process (the built-in
    models, their vocabularies and backbones: each is costly to load and read by every request that names it)."""

    def __init__(self, factory: Callable[[K], T]) -> None:
        self._factory = factory
        self.loaded: dict[K, T] = {}
        self._lock = threading.Lock()

    def get(self, key: K) -> T:
        value = self.loaded.get(key)
        if value is None:
            with self._lock:
                if key not in self.loaded:
                    self.loaded[key] = self._factory(key)
                value = self.loaded[key]
        return value
