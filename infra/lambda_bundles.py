"""The Lambda zips: `build/lambda/<target>.zip`, the contract of infra/terraform-aws/README.md (`nox -s bundles`).

    build/lambda/<target>/         the target's bundle (infra/bundles.py), plus
        lambda_main.py             handler `lambda_main.handler` (common/http/lambda_handlers.py's shim)
        <packages>                 its pins and infra/lambda-requirements.txt, installed for Lambda's
                                   python3.12 on x86_64 (manylinux wheels only, whatever this machine is, for
                                   a glibc up to the runtime's: `newer_glibc` names any that is not)
    build/lambda/<target>.zip      the same, zipped

Python 3.12, not the 3.11 the functions run on elsewhere: numpy 2.4 and ai-edge-litert ship no wheel older than
manylinux_2_27, and Lambda's python3.11 runtime is Amazon Linux 2 (glibc 2.26), its python3.12 one Amazon
Linux 2023 (glibc 2.34). Every pin has a cp312 (or abi3) wheel.

Google's client libraries are left out: on AWS the store, bucket and queue are
DynamoDB, S3 and SQS, and the adapters import their client only when chosen.
The cold start is measured as for the Google bundles: a fresh process with only
the bundle on its path (no site-packages) imports lambda_main and handles one event, on a Python 3.12
(`LAMBDA_PYTHON`, python3.12 on the PATH, or pyenv's) since the zip's compiled packages are cp312 ones.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from common.http.lambda_handlers import shim
from infra import photos
from infra.targets import REPO, TARGETS

LIMIT_MB = 250  # Lambda's limit on a function's unzipped code and dependencies
RUNTIME = "python3.12"  # infra/terraform-aws/functions.tf's runtime: Amazon Linux 2023
PYTHON = RUNTIME.removeprefix("python")
RUNTIME_GLIBC = (2, 34)
WHEELS = ["--implementation", "cp", "--python-version", PYTHON, "--only-binary=:all:"]
# Every manylinux level up to the runtime's glibc: pip never widens a --platform to the levels below it.
PLATFORMS = [arg for level in ("manylinux2014", "manylinux_2_27", "manylinux_2_28", "manylinux_2_34")
             for arg in ("--platform", f"{level}_x86_64")]
LEFT_OUT = ("google-cloud-",)
ROOT = ("root", "root-password")
RUN = """import json, sys, time
started = time.perf_counter()
sys.path[:0] = [sys.argv[1]]
import lambda_main
reply = lambda_main.handler(json.loads(sys.stdin.read()), None)
print(json.dumps({"reply": reply, "seconds": time.perf_counter() - started}, default=str))
"""


def requirements(bundle: Path) -> str:
    """The function's pins without Google's clients, and the Lambda adapter's."""
    own = [line for line in (bundle / "requirements.txt").read_text().splitlines()
           if line.strip() and not line.startswith("#") and not line.startswith(LEFT_OUT)]
    return "\n".join([*own, *(REPO / "infra" / "lambda-requirements.txt").read_text().splitlines()]) + "\n"


def build(target: str, bundle: Path, out: Path) -> Path:
    """build/lambda/<target>/ and its zip, from the target's bundle folder."""
    dest = out / "lambda" / target
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(bundle, dest)
    spec = TARGETS[target]
    (dest / "lambda_main.py").write_text(shim(target, spec.signature, spec.trigger))
    (dest / "requirements-lambda.txt").write_text(requirements(bundle))
    pins = [line for line in (dest / "requirements-lambda.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
                    "--upgrade", "--target", str(dest), *PLATFORMS, *WHEELS, *pins], check=True)
    with zipfile.ZipFile(out / "lambda" / f"{target}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(dest.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(dest))
    return dest


def newer_glibc(dest: Path) -> list[str]:
    """The installed wheels built for a newer glibc than the runtime's: they cannot load there (a wheel with
    several manylinux tags loads on the oldest one)."""
    found = []
    for wheel in sorted(dest.glob("*.dist-info/WHEEL")):
        text = wheel.read_text().replace("manylinux2014_x86_64", "manylinux_2_17_x86_64")
        tags = [(int(major), int(minor)) for major, minor in re.findall(r"manylinux_(\d+)_(\d+)_x86_64", text)]
        if tags and min(tags) > RUNTIME_GLIBC:
            found.append(wheel.parent.name.split("-")[0])
    return found


def interpreter() -> str | None:
    """A Python of the runtime's version to run a bundle with (its compiled packages load on no other)."""
    candidates = [os.environ.get("LAMBDA_PYTHON", ""), shutil.which(f"python{PYTHON}") or "",
                  *sorted(str(p) for p in Path.home().glob(f".pyenv/versions/{PYTHON}.*/bin/python{PYTHON}"))]
    for exe in filter(None, candidates):
        try:
            found = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                   capture_output=True, text=True, timeout=60).stdout.strip()
        except OSError:
            continue
        if found == PYTHON:
            return exe
    return None


def sizes(target: str, out: Path) -> tuple[float, float]:
    """The zip's size and its unzipped size, MB."""
    archive = out / "lambda" / f"{target}.zip"
    with zipfile.ZipFile(archive) as zf:
        unzipped = sum(info.file_size for info in zf.infolist())
    return archive.stat().st_size / 1e6, unzipped / 1e6


def url_event(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A function-URL request, payload format 2.0."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "cookies": [],
            "headers": {"authorization": "Basic " + base64.b64encode(":".join(ROOT).encode()).decode(),
                        **(headers or {})},
            "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                                        "sourceIp": "198.51.100.1", "userAgent": "cold-start"}},
            "body": base64.b64encode(body).decode(), "isBase64Encoded": True}


def sqs_event(body: Any) -> dict[str, Any]:
    return {"Records": [{"messageId": "m0", "body": json.dumps(body), "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:cold-start"}]}


def first_event(target: str, data_dir: Path) -> dict[str, Any]:
    """One event each target must handle, as the Google bundles' smoke requests."""
    coffee, as_json = photos.data("coffee.png"), {"content-type": "application/json"}
    message = {"job_id": "no-such-job", "object": "users/x/all/x.png"}
    (data_dir / "bucket" / "inbox").mkdir(parents=True, exist_ok=True)
    (data_dir / "bucket" / "inbox" / "c.png").write_bytes(coffee)
    upload = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "imageclassify-local"},
                                                                    "object": {"key": "inbox/c.png"}}}]}
    events = {
        "register": url_event("POST", "/register", b'{"username": "bundle-user", "password": "password1"}', as_json),
        "tokens": url_event("GET", "/tokens"),
        "files_api": url_event("PUT", "/files/a/c.png", coffee, {"content-type": "image/png"}),
        "classify": url_event("POST", "/classify", coffee, {"content-type": "image/png"}),
        "web": url_event("GET", "/"),
        "models": url_event("GET", "/models"),
        "sort_job": url_event("POST", "/jobs", b'{"classes": ["food"], "source": "empty/"}', as_json),
        "sort_worker": sqs_event(message),
        "sort_dead_letter": sqs_event(message),
        "on_upload": sqs_event(upload),
        "sweeper": {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}},
    }
    return events[target]


def cold_start(target: str, dest: Path, data_dir: Path) -> tuple[float, Any]:
    """Seconds from a fresh process's start to its first handled event (the bundle alone on its path), the reply."""
    python = interpreter()
    if python is None:
        raise RuntimeError(f"no Python {PYTHON} to run the Lambda bundle with: set LAMBDA_PYTHON to one")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(data_dir), "DATA_DIR": str(data_dir),
           "MODELS_DIR": "models", "BCRYPT_ROUNDS": "4", "ADMIN_USERNAME": ROOT[0], "ADMIN_PASSWORD": ROOT[1],
           "BUCKET_DIR": str(data_dir / "bucket"), "WATCH_PREFIX": "inbox/"}
    event = first_event(target, data_dir)
    started = time.perf_counter()
    done = subprocess.run([python, "-S", "-c", RUN, str(dest)], input=json.dumps(event),
                          cwd=dest, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{target}'s Lambda bundle failed its first event:\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])["reply"]
