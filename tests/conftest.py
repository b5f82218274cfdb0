"""Session fixtures: real emulators and real function servers, started and stopped here."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests import servers

# Fast bcrypt for the suite; the cost itself is configuration (default 12), measured in the benchmarks.
os.environ.setdefault("BCRYPT_ROUNDS", "4")
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "imageclassify-test")
PROJECT = os.environ["GOOGLE_CLOUD_PROJECT"]
REPO = servers.REPO
FUNCTIONS = REPO / "functions"


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Set environment variables for this test and make the process re-read its settings."""
    from common.config import settings
    from common.store import reset_store

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    reset_store()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from common import accounts
    from common.config import settings
    from common.store import reset_store

    yield
    settings.cache_clear()
    reset_store()
    accounts._bootstrapped = False


@pytest.fixture(scope="session")
def firestore_server() -> Iterator[servers.Server]:
    server = servers.firestore_emulator()
    os.environ["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{server.port}"
    yield server
    server.stop()


def clear_firestore(server: servers.Server) -> None:
    requests.delete(f"{server.url}/emulator/v1/projects/{PROJECT}/databases/(default)/documents", timeout=10)


@pytest.fixture(params=["sqlite", "firestore"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test using this runs once per store adapter, on a fresh store."""
    name = str(request.param)
    if name == "firestore":
        server = request.getfixturevalue("firestore_server")
        clear_firestore(server)
    configure(monkeypatch, STORE_BACKEND=name, DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "accounts.db"))
    return name


@pytest.fixture
def store(backend: str):  # type: ignore[no-untyped-def]
    from common.store import get_store

    return get_store()


def backend_env(name: str, tmp_path: Path, firestore: servers.Server | None) -> dict[str, str]:
    env = {"STORE_BACKEND": name, "DATA_DIR": str(tmp_path), "SQLITE_PATH": str(tmp_path / "accounts.db"),
           "BCRYPT_ROUNDS": "4", "GOOGLE_CLOUD_PROJECT": PROJECT}
    if firestore is not None:
        env["FIRESTORE_EMULATOR_HOST"] = f"127.0.0.1:{firestore.port}"
    return env


class Api:
    """A tiny client for the functions under test, each served by functions-framework."""

    def __init__(self, urls: dict[str, str], backend: str, reset: object) -> None:
        self.urls, self.backend, self.reset = urls, backend, reset
        self.http = requests.Session()

    def url(self, target: str, path: str) -> str:
        return self.urls[target] + path

    def register(self, username: str | None = None, password: str = "correct horse") -> dict:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        r = self.http.post(self.url("register", "/register"), json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        return {**r.json(), "password": password}

    def balance(self, key: str) -> int:
        r = self.http.get(self.url("tokens", "/tokens"), headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return int(r.json()["tokens"])


@pytest.fixture(scope="session", params=["sqlite", "firestore"])
def account_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """register and tokens under functions-framework, once per store backend."""
    name = str(request.param)
    firestore = request.getfixturevalue("firestore_server") if name == "firestore" else None
    tmp = tmp_path_factory.mktemp(f"accounts-{name}")
    env = backend_env(name, tmp, firestore)
    env.update(ADMIN_USERNAME="root", ADMIN_PASSWORD="root-password")
    started = [servers.function(t, FUNCTIONS / t / "main.py", env) for t in ("register", "tokens")]
    yield Api({"register": started[0].url, "tokens": started[1].url}, name, None)
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The built models (nox builds the default one before pytest; built here if it is missing)."""
    import subprocess
    import sys

    path = Path(os.environ.get("MODELS_DIR", REPO / ".data" / "models")).resolve()
    os.environ["MODELS_DIR"] = str(path)
    if not (path / "efficientnet_lite0.tflite").exists():
        subprocess.run([sys.executable, "-m", "infra.build_model", "--if-missing", "--models-dir", str(path)],
                       cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return path


@pytest.fixture
def lite0(models_dir: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    from common.model import get_model

    configure(monkeypatch, MODELS_DIR=str(models_dir))
    return get_model("efficientnet_lite0")
