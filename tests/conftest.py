"""Session fixtures: real emulators and real function servers, started and stopped here."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra import processes as servers
from infra.targets import TARGETS
from tests.waiting import HTTP_TIMEOUT, default_http_timeout

servers.exit_on_sigterm()  # a suite stopped by SIGTERM still stops the servers it started
default_http_timeout()  # a test call written without timeout= still ends (tests/waiting.py)

# Fast bcrypt for the suite; the cost itself is configuration (default 12), measured in the benchmarks.
os.environ.setdefault("BCRYPT_ROUNDS", "4")
os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "imageclassify-test")
PROJECT = os.environ["GOOGLE_CLOUD_PROJECT"]
REPO = servers.REPO


# The fast layer (`pytest -m "not slow"`): in process, no server, no browser, no model build. Everything else is
# marked slow here, so the real-server suites keep running in `nox -s tests` and the fast layer stays fast.
FAST_MODULES = {"test_architecture", "test_fast_http", "test_images_bounded", "test_model", "test_model_pool",
                "test_training_steps", "test_storage", "test_store_accounts", "test_store_jobs", "test_store_models",
                "test_web", "test_custom_models", "test_sorting_recovery", "test_review_mends", "test_store_throttles",
                "test_store_deletion"}
SERVER_PARAMS = {"firestore", "dynamodb", "gcs", "s3", "gcp", "aws"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if isinstance(item, pytest.Function) else ""
        callspec = getattr(item, "callspec", None)
        params = {str(v) for v in callspec.params.values()} if callspec is not None else set()
        if module not in FAST_MODULES or params & SERVER_PARAMS:
            item.add_marker(pytest.mark.slow)


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Set environment variables for this test and make the process re-read its settings."""
    from common.adapters.backends import reset_all
    from common.core.config import settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.cache_clear()
    reset_all()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    from common.accounts import admins
    from common.adapters.backends import reset_all
    from common.core.config import settings

    yield
    settings.cache_clear()
    reset_all()
    admins.reset_bootstrap()


@pytest.fixture(scope="session")
def firestore_server() -> Iterator[servers.Server]:
    server = servers.firestore_emulator()
    with pytest.MonkeyPatch.context() as patch:  # the test process's own clients find it; restored after
        patch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{server.port}")
        yield server
    server.stop()


def clear_firestore(server: servers.Server) -> None:
    r = requests.delete(f"{server.url}/emulator/v1/projects/{PROJECT}/databases/(default)/documents", timeout=30)
    assert r.status_code == 200, f"the Firestore emulator kept its documents: {r.status_code} {r.text[:200]}"


@pytest.fixture(params=["sqlite", "firestore", "dynamodb"])
def backend(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test using this runs once per store adapter, on a fresh store."""
    name = str(request.param)
    extra: dict[str, str] = {}
    if name == "firestore":
        server = request.getfixturevalue("firestore_server")
        clear_firestore(server)
    if name == "dynamodb":
        extra = new_table(request.getfixturevalue("dynamodb_server"))
    configure(monkeypatch, STORE_BACKEND=name, DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "accounts.db"),
              **extra)
    return name


def new_table(moto: servers.Server) -> dict[str, str]:
    """Environment for a fresh DynamoDB table on moto_server (created here, as infra creates it)."""
    import boto3

    from common.adapters.store.dynamodb import create_table

    table = f"store-{uuid.uuid4().hex[:12]}"
    create_table(boto3.client("dynamodb", endpoint_url=moto.url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test"), table)
    return {"DYNAMODB_TABLE": table, **aws_env(moto)}


@pytest.fixture
def store(backend: str):
    from common.adapters.backends import get_store

    return get_store()


# The suites register many accounts from one address and try many wrong passwords on purpose; the limits
# themselves are tested with their defaults-like values in test_abuse.py.
GENEROUS_LIMITS = {"SIGNUPS_PER_ADDRESS": "100000", "SIGNUPS_PER_MINUTE": "100000", "LOGIN_FREE_FAILURES": "100000",
                   "BCRYPT_CONCURRENCY": "4", "BCRYPT_QUEUE": "64"}


def backend_env(name: str, tmp_path: Path, firestore: servers.Server | None) -> dict[str, str]:
    env = {"STORE_BACKEND": name, "DATA_DIR": str(tmp_path), "SQLITE_PATH": str(tmp_path / "accounts.db"),
           "BCRYPT_ROUNDS": "4", "GOOGLE_CLOUD_PROJECT": PROJECT, **GENEROUS_LIMITS}
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
            self.servers[target] = self._start(target)
        return self.servers[target].url + path

    def _start(self, target: str, port: int | None = None) -> servers.Server:
        return servers.function(target, TARGETS[target].source, self.env, signature_type=TARGETS[target].signature,
                                port=port)

    def restart(self, target: str) -> None:
        """kill -9 a function's server and start it again on the same port (a crashed instance replaced)."""
        old = self.servers.pop(target)
        old.kill()
        self.servers[target] = self._start(target, old.port)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()

    def log_lines(self, *targets: str) -> list[dict]:
        """The JSON lines the functions `targets` have logged so far (native libraries' own prints aside)."""
        found = []
        for target in targets:
            for raw in Path(self.servers[target].log_path).read_text(errors="replace").splitlines():
                if raw.startswith("{"):
                    found.append(json.loads(raw))
        return found

    def events_handled(self, target: str) -> int:
        """How many queue messages the function `target` has handled: one log line per CloudEvent, which says how
        many messages it carried when they were several (the embedded queue's batches)."""
        self.url(target)
        return sum(int(line.get("messages", 1)) for line in self.log_lines(target) if "cloudevent" in line)

    def register(self, username: str | None = None, password: str = "correct horse") -> dict:
        username = username or f"u{uuid.uuid4().hex[:10]}"
        r = self.http.post(self.url("register", "/register"), json={"username": username, "password": password},
                           timeout=HTTP_TIMEOUT)
        assert r.status_code == 201, r.text
        return {**r.json(), "password": password}

    def admin_key(self) -> str:
        """A fresh API key of the bootstrap admin (root)."""
        r = self.http.post(self.url("register", "/api-key"), auth=("root", "root-password"),
                           timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        return str(r.json()["api_key"])

    def user_with(self, tokens: int) -> dict:
        """A new account holding exactly `tokens` tokens (refilled by the admin when more than the initial 5)."""
        user = self.register()
        if tokens > user["tokens"]:
            r = self.http.post(self.url("tokens", "/refill"), headers=bearer({"api_key": self.admin_key()}),
                               json={"username": user["username"], "amount": tokens - user["tokens"]},
                               timeout=HTTP_TIMEOUT)
            assert r.status_code == 200, r.text
        return user

    def balance(self, key: str) -> int:
        r = self.http.get(self.url("tokens", "/tokens"), headers={"Authorization": f"Bearer {key}"},
                          timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        return int(r.json()["tokens"])


def bearer(user: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {user['api_key']}"}


def error_of(r: requests.Response, status: int) -> dict:
    """The error of a refusal, checked to have the contract's shape and to leak nothing."""
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert body["status"] == status and body["code"] and body["message"]
    assert "Traceback" not in r.text
    return dict(body)


def make_api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str,
             **extra: str) -> Api:
    firestore = request.getfixturevalue("firestore_server") if name == "firestore" else None
    env = backend_env(name, tmp_path_factory.mktemp(f"api-{name}"), firestore)
    # its own Firestore project, so the store suite's resets never touch it
    env["GOOGLE_CLOUD_PROJECT"] = f"{PROJECT}-{uuid.uuid4().hex[:8]}"
    env.update(ADMIN_USERNAME="root", ADMIN_PASSWORD="root-password", INTERNAL_SECRET=INTERNAL_SECRET, **extra)
    return Api(name, env)


INTERNAL_SECRET = "test-internal-secret"


def signed(message: dict) -> dict:
    """A queue message signed as the functions under test expect (their INTERNAL_SECRET)."""
    from common.core.signing import mac

    return {**message, "sig": mac(INTERNAL_SECRET, message)}


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
    built = ["efficientnet_lite0.tflite", "efficientnet_lite0_features.tflite", "efficientnet_lite0.head.npz"]
    if not all((path / name).exists() for name in built):
        subprocess.run([sys.executable, "-m", "infra.build_model", "--if-missing", "--models-dir", str(path)],
                       cwd=REPO, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return path


@pytest.fixture(scope="session")
def lite2_dir(models_dir: Path) -> Path:
    """The models folder with EfficientNet-Lite2 built too (once per session, about half a minute if missing)."""
    import subprocess
    import sys

    if not all((models_dir / f"efficientnet_lite2{suffix}").exists()
               for suffix in (".labels.json", "_features.tflite", ".head.npz", ".head.json")):
        subprocess.run([sys.executable, "-m", "infra.build_model", "--model", "efficientnet_lite2", "--if-missing",
                        "--models-dir", str(models_dir)], cwd=REPO, check=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    return models_dir


@pytest.fixture
def lite0(models_dir: Path, monkeypatch: pytest.MonkeyPatch):
    from common.models.model import get_model

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


# -- object storage and queues ----------------------------------------------------------

UPLOAD_TOPIC = "bucket-uploads"


@pytest.fixture(scope="session")
def pubsub_server() -> Iterator[servers.Server]:
    server = servers.pubsub_emulator()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server(pubsub_server: servers.Server) -> Iterator[servers.Server]:
    """fake-gcs-server, publishing real finalize notifications to the Pub/Sub emulator."""
    env = {**os.environ, "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{pubsub_server.port}"}
    ensure_topic(pubsub_server, PROJECT, UPLOAD_TOPIC)
    server = servers.fake_gcs(["-event.pubsub-project-id", PROJECT, "-event.pubsub-topic", UPLOAD_TOPIC,
                               "-event.list", "finalize"], env=env)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[servers.Server]:
    server = servers.moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[servers.Server]:
    """moto_server serving DynamoDB requests one at a time, as isolated as DynamoDB's (tests/moto_serial.py)."""
    import sys

    port = servers.free_port()
    server = servers.Server("moto-dynamodb", [sys.executable, "-m", "tests.moto_serial", str(port)], port,
                            cwd=REPO, ready=servers.http_ok(f"http://127.0.0.1:{port}/moto-api/"))
    yield server
    server.stop()


def aws_env(moto: servers.Server) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": moto.url, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1"}


def ensure_topic(pubsub: servers.Server, project: str, topic: str) -> None:
    r = requests.put(f"{pubsub.url}/v1/projects/{project}/topics/{topic}", json={}, timeout=10)
    assert r.status_code in (200, 409), r.text


def new_bucket(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Environment for a fresh bucket on one storage backend (created on its server)."""
    name = f"bucket-{uuid.uuid4().hex[:12]}"
    if kind == "local":
        return {"STORAGE_BACKEND": "local", "BUCKET": name, "BUCKET_DIR": str(tmp_path / "bucket")}
    if kind == "gcs":
        gcs = request.getfixturevalue("gcs_server")
        r = requests.post(f"{gcs.url}/storage/v1/b?project={PROJECT}", json={"name": name}, timeout=10)
        assert r.status_code == 200, r.text
        return {"STORAGE_BACKEND": "gcs", "BUCKET": name, "STORAGE_EMULATOR_HOST": gcs.url}
    moto = request.getfixturevalue("moto_server")
    env = aws_env(moto)
    import boto3

    boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1", aws_access_key_id="test",
                 aws_secret_access_key="test").create_bucket(Bucket=name)
    return {"STORAGE_BACKEND": "s3", "BUCKET": name, **env}


@pytest.fixture(params=["local", "gcs", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from common.adapters.backends import get_storage, reset_storage

    configure(monkeypatch, **new_bucket(str(request.param), request, tmp_path))
    reset_storage()
    yield get_storage()
    reset_storage()
