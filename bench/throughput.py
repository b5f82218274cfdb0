"""Issue 15's figures, on the local stack (waitress, the interpreter pool) against this process's sequential rate.

- HTTP classify throughput at 1/2/4/8 keep-alive `requests` clients (what a user's client does), for multipart
  uploads and raw `image/jpeg` bodies of a 640x427 JPEG, against the yardstick (bench/yardstick.py): two
  concurrent callers in process on the same image in the same run (target >= 0.90 at the best client count);
- the same uploads from a load generator (`loadgen`: each request's bytes made once, sent whole on a keep-alive
  socket, the answer read by its length), whose ~0.1 ms of CPU a request leaves the cores to the server, as
  clients on other machines would: what the server alone does, beside what it does with `requests` beside it;
- at the best client count, the ratio the `requests` clients' own CPU leaves the stack at best (the callers' CPU
  per image over theirs plus the clients'), as if the stack cost no more than the callers and no core idled;
- 1-client p50 over HTTP against the lone caller's in process (target <= +3 ms);
- a batch of 16 images in one request against 16 single requests;
- preprocessing: the fast path against the reference (exact) pipeline, and the largest change it makes to
  any probability on the shipped photos.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import socket
import threading
import time
import timeit
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import requests
from PIL import Image

from bench.report import pct, table
from bench.yardstick import cpu_seconds
from infra import photos
from infra.stack_process import LocalStack

SENDS, CLIENTS, LOADGEN = ("multipart", "raw"), (1, 2, 4, 8), (2, 4, 8)
JPEG = "640x427 JPEG"  # the yardstick's image set for this section


def encoded(name: str, size: tuple[int, int], fmt: str = "JPEG") -> bytes:
    img = Image.open(io.BytesIO(photos.data(name))).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    img.save(out, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out.getvalue()


class Run(NamedTuple):
    rate: float  # images per second
    latencies: list[float]  # seconds
    server_cpu_ms: float  # the stack's CPU per image
    client_cpu_ms: float  # the clients' CPU per image (this process, running nothing else meanwhile)
    busy: float  # of the machine's cores, the share the stack and the clients used


@contextlib.contextmanager
def _requests_client(stack: LocalStack, user: dict, send: str, data: bytes) -> Iterator[Callable[[], tuple[int, str]]]:
    http = requests.Session()

    def post() -> tuple[int, str]:
        if send == "multipart":
            r = http.post(stack.url + "/classify", headers=user["headers"],
                          files={"file": ("p.jpg", data, "image/jpeg")}, timeout=60)
        else:
            r = http.post(stack.url + "/classify", headers={**user["headers"], "Content-Type": "image/jpeg"},
                          data=data, timeout=60)
        return r.status_code, r.text

    with http:
        yield post


def loadgen_request(host: str, api_key: str, send: str, data: bytes) -> bytes:
    """The whole HTTP request a load generator sends: what `requests` sends, made once."""
    if send == "multipart":
        boundary = "loadgen-0123456789abcdef"
        body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        content_type = f"multipart/form-data; boundary={boundary}"
    else:
        body, content_type = data, "image/jpeg"
    return (f"POST /classify HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {api_key}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


@contextlib.contextmanager
def _loadgen_client(stack: LocalStack, user: dict, send: str, data: bytes) -> Iterator[Callable[[], tuple[int, str]]]:
    request = loadgen_request(f"127.0.0.1:{stack.port}", user["api_key"], send, data)
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b""

    def post() -> tuple[int, str]:
        nonlocal pending
        sock.sendall(request)
        while b"\r\n\r\n" not in pending:
            pending += _received(sock)
        head, _, pending = pending.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        while len(pending) < length:
            pending += _received(sock)
        body, pending = pending[:length], pending[length:]
        return int(lines[0].split()[1]), body.decode()

    with sock:
        yield post


def _received(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection")
    return chunk


def clients(stack: LocalStack, user: dict, send: str, data: bytes, n: int, seconds: float,
            loadgen: bool = False) -> Run:
    """n clients uploading `data` for `seconds`: `requests` sessions, or the load generator's sockets."""
    latencies: list[float] = []
    failures: list[str] = []
    lock, stop = threading.Lock(), time.monotonic() + seconds
    client = _loadgen_client if loadgen else _requests_client

    def run() -> None:
        with client(stack, user, send, data) as post:
            while time.monotonic() < stop:
                start = time.perf_counter()
                status, text = post()
                with lock:
                    if status == 200:
                        latencies.append(time.perf_counter() - start)
                    else:
                        failures.append(f"{status} {text[:100]}")

    assert stack.proc is not None
    threads = [threading.Thread(target=run) for _ in range(n)]
    started, server, client_cpu = time.perf_counter(), cpu_seconds(stack.proc.pid), cpu_seconds()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed, server, client_cpu = (time.perf_counter() - started, cpu_seconds(stack.proc.pid) - server,
                                   cpu_seconds() - client_cpu)
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    done = max(1, len(latencies))
    return Run(len(latencies) / elapsed, latencies, 1000 * server / done, 1000 * client_cpu / done,
               (server + client_cpu) / (elapsed * (os.cpu_count() or 1)))


def batch_vs_singles(stack: LocalStack, user: dict, data: bytes, rounds: int = 6) -> tuple[float, float]:
    body = {"images": [{"image": base64.b64encode(data).decode()}] * 16}
    http = requests.Session()
    http.post(stack.url + "/classify", headers=user["headers"], json=body, timeout=60)  # warm
    start = time.perf_counter()
    for _ in range(rounds):
        r = http.post(stack.url + "/classify", headers=user["headers"], json=body, timeout=60)
        assert r.status_code == 200 and all("predictions" in x for x in r.json()["results"]), r.text[:200]
    batch = 16 * rounds / (time.perf_counter() - start)
    with _requests_client(stack, user, "raw", data) as post:
        start = time.perf_counter()
        for _ in range(16 * rounds):
            status, text = post()
            assert status == 200, text[:200]
        return batch, 16 * rounds / (time.perf_counter() - start)


def _best(runs: dict[tuple[str, int], Run]) -> dict[str, int]:
    """Each way of sending's best client count."""
    return {send: max((n for s, n in runs if s == send), key=lambda n: runs[(send, n)].rate)
            for send in SENDS}


def _figures(runs: dict[tuple[str, int], Run]) -> dict[str, dict[str, float]]:
    """What results.json keeps of each run, by `<send>_<clients>`."""
    return {f"{s}_{n}": {"images_per_s": r.rate, "p50_ms": pct(r.latencies, 0.5) * 1000,
                         "server_cpu_ms_per_image": r.server_cpu_ms, "client_cpu_ms_per_image": r.client_cpu_ms,
                         "cores_busy": r.busy} for (s, n), r in runs.items()}


def preprocessing(data: bytes) -> dict[str, float]:
    import numpy as np

    from common.media import images
    from common.models.model import get_model

    fast = min(timeit.repeat(lambda: images.prepare(data), number=100, repeat=5)) / 100 * 1000
    exact = min(timeit.repeat(lambda: images.prepare(data, exact=True), number=100, repeat=5)) / 100 * 1000
    model, worst, same_top1 = get_model(), 0.0, True
    for name in photos.PHOTOS:
        for candidate in (photos.data(name), encoded(name, (640, 427)), encoded(name, (3000, 2000), "PNG")):
            a = model.probabilities(images.prepare(candidate))
            b = model.probabilities(images.prepare(candidate, exact=True))
            worst, same_top1 = max(worst, float(np.abs(a - b).max())), same_top1 and a.argmax() == b.argmax()
    return {"fast_ms": fast, "exact_ms": exact, "max_abs_dprob": worst, "same_top1": same_top1}


def run(tmp: Path, models_dir: str) -> dict[str, Any]:
    from bench import yardstick

    data = encoded("coffee.png", (640, 427))
    limit = yardstick.get(JPEG, [data])
    base = {"rate": limit["two_callers_images_per_s"], "p50_ms": limit["lone_p50_ms"],
            "cpu_ms": limit["two_callers_cpu_ms_per_image"]}
    stack = LocalStack(tmp / "data", Path(models_dir), SIGNUPS_PER_ADDRESS="1000").start()
    try:
        user = stack.user("bench", 1_000_000)
        clients(stack, user, "raw", data, 2, 2)  # warm: the pool grows to its size
        http = {(send, n): clients(stack, user, send, data, n, 6) for send in SENDS for n in CLIENTS}
        gen = {(send, n): clients(stack, user, send, data, n, 6, loadgen=True) for send in SENDS for n in LOADGEN}
        batch, singles = batch_vs_singles(stack, user, data)
    finally:
        stack.stop(120)
    prep = preprocessing(data)
    best, best_gen = _best(http), _best(gen)
    p50 = pct(http[("multipart", 1)].latencies, 0.5) * 1000
    rows = [("figure", "value", "baseline", "ratio / target")]
    for send in SENDS:
        for n in CLIENTS:
            rate = http[(send, n)].rate
            rows.append((f"HTTP {send}, {n} client(s) (img/s)", f"{rate:.1f}",
                         f"{base['rate']:.1f} 2 callers in process",
                         f"{rate / base['rate']:.2f}x" + (" (best; target >= 0.90)" if n == best[send] else "")))
    for send in SENDS:
        run = gen[(send, best_gen[send])]
        rows.append((f"HTTP {send}, load generator, {best_gen[send]} conn. (img/s)", f"{run.rate:.1f}",
                     f"{base['rate']:.1f} 2 callers in process",
                     f"{run.rate / base['rate']:.2f}x; stack {run.server_cpu_ms:.2f} ms CPU/img, clients "
                     f"{run.client_cpu_ms:.2f}; cores busy {run.busy:.0%}"))
    ceiling = {}  # the ratio the clients leave the stack if it cost no more than the callers and no core idled
    for send in SENDS:  # where the cores went at the best count: the stack, the clients, idle
        run = http[(send, best[send])]
        ceiling[send] = base["cpu_ms"] / (base["cpu_ms"] + run.client_cpu_ms)
        rows.append((f"HTTP {send}, {best[send]} clients: CPU ms per image", f"{run.server_cpu_ms:.2f} stack",
                     f"{base['cpu_ms']:.2f} 2 callers in process",
                     f"{base['cpu_ms'] / run.server_cpu_ms:.2f}x; clients {run.client_cpu_ms:.2f} ms; "
                     f"cores busy {run.busy:.0%}; ratio at best beside these clients {ceiling[send]:.2f}"))
    rows += [
        ("1-client p50 (ms)", f"{p50:.1f}", f"{base['p50_ms']:.1f} lone caller in process",
         f"{p50 - base['p50_ms']:+.1f} ms (target <= +3)"),
        ("batch of 16 in one request (img/s)", f"{batch:.1f}", f"{singles:.1f} as 16 requests",
         f"{batch / singles:.2f}x (target >= 1.5)"),
        ("preprocess 640x427 JPEG (ms)", f"{prep['fast_ms']:.2f}", f"{prep['exact_ms']:.2f} reference",
         f"target <= 4; max |dprob| {prep['max_abs_dprob']:.4f}, same top-1: {prep['same_top1']}"),
    ]
    table("throughput: the local stack vs the yardstick (2 callers in process), 640x427 JPEG", rows)
    return {"in_process": base, "yardstick": yardstick.entry(max(r.rate for r in http.values()), JPEG),
            "http": _figures(http), "best_ratio": {s: http[(s, best[s])].rate / base["rate"] for s in best},
            "ceiling_ratio": ceiling, "loadgen": _figures(gen),
            "loadgen_best_ratio": {s: gen[(s, best_gen[s])].rate / base["rate"] for s in best_gen},
            "p50_1_client_ms": p50, "batch16_images_per_s": batch, "singles_images_per_s": singles,
            "batch_ratio": batch / singles, "preprocess": prep}
