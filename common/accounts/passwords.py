"""Password hashing under a budget, and a wrong answer for names that do not exist that costs no hash.

Two gates of the same shape: real bcrypt work passes `_gate("hash")`; a password
that cannot be right (an unknown name, a password over bcrypt's 72 bytes)
passes `_gate("pretend")` and only sleeps as long as a real check recently took.
So a flood of guesses for random names can fill its own gate, never the one a
real sign-in needs, and spends no CPU; and while neither gate is full, an
unknown name's 401 takes as long as a known name's (its time is drawn from the
real checks'). When a flood fills the pretend gate, an unknown name gets the
same 503 a known one gets when its gate is full.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import random
import threading
import time
from collections.abc import Callable, Iterator

import bcrypt

from common.core import errors
from common.core.config import settings

BCRYPT_WAIT = 10.0
MAX_BYTES = 72  # bcrypt ignores what follows; longer passwords are refused at sign-up
_recent: collections.deque[float] = collections.deque(maxlen=64)  # seconds the last real checks took


class _PasswordGate:
    """At most BCRYPT_CONCURRENCY password hashes at a time per process, and at most BCRYPT_QUEUE more waiting:
    a flood of password guesses is refused with 503 at once beyond that, so it can hold neither the cores nor
    the server's threads that API-key requests need."""

    def __init__(self, running: int, waiting: int) -> None:
        self.slots, self.max_waiting = threading.BoundedSemaphore(max(1, running)), max(0, waiting)
        self.waiting, self.lock = 0, threading.Lock()

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        busy = errors.Unavailable("Too many password checks at once. Retry in a moment, or use your API key.")
        if not self.slots.acquire(blocking=False):
            with self.lock:
                if self.waiting >= self.max_waiting:
                    raise busy
                self.waiting += 1
            try:
                if not self.slots.acquire(timeout=BCRYPT_WAIT):
                    raise busy
            finally:
                with self.lock:
                    self.waiting -= 1
        try:
            yield
        finally:
            self.slots.release()


@functools.cache
def _gate(kind: str) -> _PasswordGate:
    """`hash` for real bcrypt work, `pretend` for checks that can only fail: separate budgets of one size."""
    return _PasswordGate(settings().accounts.bcrypt_concurrency, settings().accounts.bcrypt_queue)


@functools.cache
def _calibration() -> float:
    """How long one check takes at the configured cost, measured once per process (before any real check)."""
    salted = bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(settings().accounts.bcrypt_rounds))
    started = time.monotonic()
    bcrypt.checkpw(b"x", salted)
    return time.monotonic() - started


def _timed(work: Callable[[], bool]) -> bool:
    started = time.monotonic()
    result = work()
    _recent.append(time.monotonic() - started)
    return result


def hash_password(password: str, admit: Callable[[], None] | None = None) -> str:
    """bcrypt `password`; `admit` runs once a hash slot is held and before hashing, so a refusal by it (a sign-up
    limit) spends no hash, and a request refused a slot (503) was never admitted."""
    with _gate("hash").enter():
        if admit is not None:
            admit()
        return bcrypt.hashpw(password.encode(), bcrypt.gensalt(settings().accounts.bcrypt_rounds)).decode()


def check_password(password: str, password_hash: str | None) -> bool:
    """Whether `password` is the one hashed; with no hash (no such account) or a password bcrypt cannot have
    hashed, False after as long as a real check takes, without hashing."""
    candidate = password.encode()
    if password_hash is None or len(candidate) > MAX_BYTES:
        return pretend_check()
    with _gate("hash").enter():
        return _timed(lambda: bcrypt.checkpw(candidate, password_hash.encode()))


def pretend_check() -> bool:
    """A failed check that costs no CPU and no hash slot: a sleep as long as a recent real check, in its own gate."""
    with _gate("pretend").enter():
        time.sleep(random.choice(_recent) if _recent else _calibration())  # noqa: S311 - a duration, not a secret
    return False
