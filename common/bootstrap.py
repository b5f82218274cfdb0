"""The composition root: the one place a process builds what the service layer uses and hands it down.

As in cosmicpython's `bootstrap.py`: the entry points (`functions/*/main.py`, the HTTP layer, the operator CLI)
ask `deps()` for the process's `Deps` and pass it to the services, which never look a dependency up themselves.
The settings come from the environment, and the store, storage and queue from the adapters the settings choose
(`common.adapters.backends`), each made on first use and once per process. Tests build a `Deps` of their own
with `bootstrap(settings, store=..., ...)` or `Deps(...)` directly.
"""

from __future__ import annotations

from common.adapters import backends
from common.adapters.deps import Deps, Given
from common.adapters.queue.port import Queue
from common.adapters.storage.port import Storage
from common.core import config
from common.core.config import Settings
from common.records import webhooks
from common.records.store import Store


def bootstrap(settings: Given[Settings] | None = None, *, store: Given[Store] | None = None,
              storage: Given[Storage] | None = None, queue: Given[Queue] | None = None) -> Deps:
    """A `Deps`: what is given, and for the rest the process's own (the configured adapters, made on first use;
    they are resolved at each use, so a test that resets them or the settings (`settings.cache_clear()`) is
    served the new ones)."""
    return Deps(settings or config.settings, store=store or backends.get_store,
                storage=storage or backends.get_storage, queue=queue or backends.get_queue)


_process = bootstrap()


def _announce(delivery_id: str) -> None:
    """A webhook's delivery just recorded: tell a worker now (the sweeper would, later)."""
    from common.accounts import deliveries

    _process.queue.publish([deliveries.message(delivery_id)])


webhooks.on_announce(_announce)


def deps() -> Deps:
    """The process's `Deps`."""
    return _process
