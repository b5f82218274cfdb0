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
    """The functions under test, each served by functions-framework on its own port, started on first use."""

    def __init__(self, backend: str, env: dict[str, str]) -> None:
        self.backend, self.env = backend, env
        self.servers: dict[str, servers.Server] = {}
        self.http = requests.Session()

    def url(self, target: str, path: str = "") -> str:
        if target not in self.servers:
            folder = "sort_job" if target in ("sort_job", "sort_worker", "on_upload") else target
            kind = "cloudevent" if target in ("sort_worker", "on_upload") else None
            self.servers[target] = servers.function(target, FUNCTIONS / folder / "main.py", self.env,
                                                    signature_type=kind)
        return self.servers[target].url + path

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def register(self, username: str | None = None, password: str = "correct horse") -> dict:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        r = self.http.post(self.url("register", "/register"), json={"username": username, "password": password})
        assert r.status_code == 201, r.text
        return {**r.json(), "password": password}

    def balance(self, key: str) -> int:
        r = self.http.get(self.url("tokens", "/tokens"), headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return int(r.json()["tokens"])


def make_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str,
             **extra: str) -> Api:
    firestore = request.getfixturevalue("firestore_server") if name == "firestore" else None
    env = backend_env(name, tmp_path_factory.mktemp(f"api-{name}"), firestore)
    # its own Firestore project, so the store suite's resets never touch it
    env["GOOGLE_CLOUD_PROJECT"] = f"{PROJECT}-{uuid.uuid4().hex[:8]}"
    env.update(ADMIN_USERNAME="root", ADMIN_PASSWORD="root-password", **extra)
    return Api(name, env)


@pytest.fixture(scope="session", params=["sqlite", "firestore"])
def account_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The functions under functions-framework, once per store backend."""
    api = make_api(request, tmp_path_factory, str(request.param))
    yield api
    api.stop()


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


@pytest.fixture(scope="session", params=["sqlite", "firestore"])
def classify_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 models_dir: Path) -> Iterator[Api]:
    """The functions with loopback fetches allowed, for images served by the tests' own HTTP server."""
    api = make_api(request, tmp_path_factory, str(request.param), FETCH_ALLOW_LOOPBACK="1",
                   FETCH_DEADLINE="3", MODELS_DIR=str(models_dir))
    yield api
    api.stop()


@pytest.fixture(scope="session")
def strict_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
               models_dir: Path) -> Iterator[Api]:
    """The functions as deployed: loopback fetches NOT allowed."""
    api = make_api(request, tmp_path_factory, "sqlite", MODELS_DIR=str(models_dir))
    assert "FETCH_ALLOW_LOOPBACK" not in api.env
    yield api
    api.stop()


@pytest.fixture(scope="session")
def image_server() -> Iterator[str]:
    from tests.imageserver import serve

    server, url = serve()
    yield url
    server.shutdown()
