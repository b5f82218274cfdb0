"""`python -m bench.http_throughput`: classify throughput over HTTP against the local stack, vs in process.

Multipart uploads of a 640x427 JPEG (made from a shipped photo) to `POST /classify`
on `python -m infra.localstack`, from 1, 2 and 4 client threads (keep-alive
sessions), each for `--seconds`; then the same image decoded and classified
sequentially in this process. `--repo DIR` runs the stack from another checkout
(to compare servers).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from PIL import Image

from infra import photos
from infra.processes import REPO, Server, free_port, http_ok


def photo_jpeg() -> bytes:
    img = Image.open(io.BytesIO(photos.data("coffee.png"))).convert("RGB").resize((640, 427), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90)
    return out.getvalue()


def clients(url: str, key: str, data: bytes, n: int, seconds: float) -> float:
    done = [0] * n
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        with requests.Session() as http:
            while time.monotonic() < stop:
                r = http.post(url, files={"file": ("p.jpg", data, "image/jpeg")},
                              headers={"Authorization": f"Bearer {key}"})
                assert r.status_code == 200, r.text
                done[i] += 1

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(done) / (time.monotonic() - started)


def in_process(data: bytes, seconds: float) -> float:
    from common.model import get_model

    model = get_model()
    model.predict(data)
    count, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        model.predict(data)
        count += 1
    return count / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--repo", type=Path, default=REPO)
    args = parser.parse_args()
    data = photo_jpeg()
    port = free_port()
    models = os.environ.get("MODELS_DIR", str(REPO / ".data" / "models"))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYTHONPATH": str(args.repo), "MODELS_DIR": models, "INITIAL_TOKENS": "10000000",
               "BCRYPT_ROUNDS": "4"}
        argv = [sys.executable, "-m", "infra.localstack", "--port", str(port), "--data-dir", tmp]
        stack = Server("bench-stack", argv, port, env=env, cwd=args.repo,
                       ready=http_ok(f"http://127.0.0.1:{port}/healthz"))
        try:
            base = f"http://127.0.0.1:{port}"
            key = requests.post(base + "/register", json={"username": "bench", "password": "bench password"}).json()
            url = base + "/classify"
            clients(url, key["api_key"], data, 1, 1.0)  # warm: model loaded
            for n in (1, 2, 4):
                print(f"HTTP, {n} client(s): {clients(url, key['api_key'], data, n, args.seconds):6.1f} images/s",
                      flush=True)
        finally:
            stack.stop()
    print(f"in process, sequential decode + infer: {in_process(data, args.seconds):6.1f} images/s")


if __name__ == "__main__":
    main()
