"""`Deps`: what the service layer uses (settings, store, storage, queue), handed in rather than looked up.

The composition root (`common.bootstrap`) builds one per process; a test builds its own with the store or
storage it made (`Deps(settings, store=Store(SqliteDocuments(path)))`). Each dependency is given as an object
or as a function that makes it: the latter is called on first use only, so a function that never touches the
queue never pays for a queue client at its cold start.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TypeAlias, TypeVar, cast

from common.adapters.queue.port import Queue
from common.adapters.storage.port import Storage
from common.core.config import Settings
from common.records.store import Store

T = TypeVar("T")
Given: TypeAlias = "T | Callable[[], T]"  # the dependency, or a function that makes it


def _provider(name: str, given: object) -> Callable[[], object]:
    """`given` as a function that returns the dependency: a function as it is, an object wrapped."""
    if given is None:
        def missing() -> object:
            raise RuntimeError(f"this Deps was built without a {name}")

        return missing
    if inspect.isroutine(given) or isinstance(given, functools.partial):
        return cast(Callable[[], object], given)
    return lambda: given


class Deps:
    def __init__(self, settings: Given[Settings], *, store: Given[Store] | None = None,
                 storage: Given[Storage] | None = None, queue: Given[Queue] | None = None) -> None:
        self._settings = _provider("settings", settings)
        self._store = _provider("store", store)
        self._storage = _provider("storage", storage)
        self._queue = _provider("queue", queue)

    @property
    def settings(self) -> Settings:
        return cast(Settings, self._settings())

    @property
    def store(self) -> Store:
        return cast(Store, self._store())

    @property
    def storage(self) -> Storage:
        return cast(Storage, self._storage())

    @property
    def queue(self) -> Queue:
        return cast(Queue, self._queue())
