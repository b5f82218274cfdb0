"""Clients classifying one image as fast as they can until stopped, counting what they were told: the chaos
tests kill the stack under them and then check the books against these counts."""

from __future__ import annotations

import threading

import requests


class Burst:
    def __init__(self, url: str, headers: dict[str, str], image: bytes, clients: int) -> None:
        self.url, self.headers, self.image = url, headers, image
        self.successes = self.unknown = 0  # answered 200; no answer at all (charged or not: the kill decides)
        self._lock, self._stop = threading.Lock(), threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def start(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _client(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            try:
                r = session.post(self.url + "/classify", headers=self.headers, timeout=30,
                                 files={"file": ("c.png", self.image)})
                ok, lost = r.status_code == 200, False
            except requests.RequestException:
                ok, lost = False, True
            with self._lock:
                self.successes += ok
                self.unknown += lost
