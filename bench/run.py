"""`nox -s bench`: every figure side by side with its baseline from the same run.

Prints a table per section and writes bench/results.json. Sections:
  model      the seeds' Keras `model.predict` vs the LiteRT serving path: cold start, warm latency,
             throughput, peak RSS, decode cost with and without draft, and the ceiling (FLOPs / peak)
  models     Lite0 and Lite2 as served beside the seeds' Keras InceptionV3 (random weights, same timing):
             published top-1, latency, throughput, peak RSS, cold start
  http       classify over HTTP under functions-framework vs in-process, vs a naive Flask + Keras app;
             cold starts; Bearer key vs bcrypt password per request; register latency
  jobs       a 200-image sort job on the local backend set vs two concurrent callers in process (measured around it);
             the worker's and the whole job's CPU per image besides the model (a stub model at the job's pace),
             and the ratio that leaves with every core busy
  throughput issue 15's figures on the local stack: HTTP vs in-process, batch vs singles, preprocessing
  security   a Bearer classify during a password-guessing flood; hostile image shapes
  recovery   a 200-image job killed with SIGKILL and restarted: time to done, redeliveries
  training   a custom model on 2,000 animal-mnist images: time to ready, embedding rate (vs two callers in
             process on the same images and views), accuracy
  bundles    each bundle's installed size and cold start in its own virtual environment
  pool       the interpreter pool in process, per MODEL_INTERPRETERS x MODEL_THREADS: one caller vs two
             concurrent callers, a batch of 16 vs 16 singles, peak RSS; where a classify start-up goes
  scale      issue 20's figures on the Firestore emulator with a stub model: a sort job with 1, 4, 16 worker
             processes and one account with 1, 4, 16 classify callers; writes per document per second, contention,
             exactness (bench/scale.py; sizes from SCALE_* variables; kept under scale.<SCALE_LABEL, default latest>,
             beside the labels of earlier runs)
  photos     12-megapixel JPEG, HEIC and AVIF and a large PNG in process: classify time and its parts, decode
             scale vs accuracy, the JPEG entropy floor (bench/photos.py)
Every section also prints its ratio to the yardstick, the in-process rate of two concurrent callers measured
in the same run (bench/yardstick.py), kept beside its figures in results.json.
`python -m bench.run model http` runs only some.

Every file a section writes (its stacks' data, bucket folders, bundles) lives under `.data/bench/`, where the
product keeps its data by default, not in the system's temporary folder: on an ext4 without a journal (this
machine's), creating a file near many recently deleted ones (/tmp, after a test run) takes a scan of them, and
that cost would be measured as the product's. The jobs section prints what creating a file costs in both.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import requests

from bench import bookkeeping
from bench.report import pct, table
from infra import photos
from infra.processes import REPO, Server, free_port, function
from infra.stack_process import LocalStack
from infra.targets import TARGETS

RESULTS = REPO / "bench" / "results.json"
SCRATCH = REPO / ".data" / "bench"  # TMPDIR of the bench and of every process it starts
PY = sys.executable
SYSTEM_TMP = tempfile.gettempdir()  # before main() points TMPDIR at SCRATCH


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def models_dir() -> str:
    from common.core.config import settings

    return str(settings().models.models_dir.resolve())


def side(name: str) -> dict[str, Any]:
    t0 = time.time()
    out = subprocess.run([PY, "-m", "bench.model_side", name, repr(t0)], cwd=REPO, env=env(), check=True,
                         capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- model ------------------------------------------------------------------------------


def peak_flops() -> float:
    """numpy's (OpenBLAS) large float32 matmul; the Keras side measures TensorFlow's (oneDNN) too."""
    n = 4096
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    a @ a
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        a @ a
        best = max(best, 2 * n**3 / (time.perf_counter() - start))
    return best


def decode_costs() -> list[tuple[str, float, float]]:
    from PIL import Image

    from common.media.images import prepare

    big = Image.open(io.BytesIO(photos.data("coffee.png"))).convert("RGB").resize((4000, 2667))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    samples = {name: photos.data(name) for name in photos.PHOTOS} | {"coffee 4000x2667 JPEG": buf.getvalue()}
    rows = []
    for name, data in samples.items():
        timings = {}
        for draft in (False, True):
            runs = []
            for _ in range(7):
                start = time.perf_counter()
                prepare(data, use_draft=draft)
                runs.append(time.perf_counter() - start)
            timings[draft] = statistics.median(runs) * 1000
        rows.append((name, timings[False], timings[True]))
    return rows


def bench_model() -> dict[str, Any]:
    cold = {k: statistics.median(side(f"cold-{k}")["cold_s"] for _ in range(5)) for k in ("keras", "litert")}
    warm = {k: side(k) for k in ("keras", "litert")}
    decode = decode_costs()
    peak = max(peak_flops(), warm["keras"]["matmul_flops"])
    flops = 2 * warm["keras"]["macs"]
    achieved = flops * warm["litert"]["images_per_s"]
    k, lt = warm["keras"], warm["litert"]
    table("model: the seeds' Keras model.predict vs LiteRT serving (EfficientNet-Lite0, 2 cores)", [
        ("", "Keras predict", "LiteRT", "ratio"),
        ("cold start, median of 5 (s)", f"{cold['keras']:.2f}", f"{cold['litert']:.2f}",
         f"{cold['keras'] / cold['litert']:.1f}x faster"),
        ("warm p50 (ms)", f"{k['p50_ms']:.1f}", f"{lt['p50_ms']:.2f}", f"{k['p50_ms'] / lt['p50_ms']:.1f}x"),
        ("warm p99 (ms)", f"{k['p99_ms']:.1f}", f"{lt['p99_ms']:.2f}", f"{k['p99_ms'] / lt['p99_ms']:.1f}x"),
        ("throughput (images/s)", f"{k['images_per_s']:.1f}", f"{lt['images_per_s']:.1f}",
         f"{lt['images_per_s'] / k['images_per_s']:.1f}x"),
        ("peak RSS (MB)", f"{k['peak_rss_mb']:.0f}", f"{lt['peak_rss_mb']:.0f}",
         f"{k['peak_rss_mb'] / lt['peak_rss_mb']:.1f}x less"),
    ])
    table("decode + preprocess per photo (ms, median of 7)", [("photo", "full decode", "with draft", "speed-up")] + [
        (name, f"{a:.1f}", f"{b:.1f}", f"{a / b:.1f}x") for name, a, b in decode])
    table("ceiling", [("", "value"),
                      ("model FLOPs per image", f"{flops / 1e9:.2f} GFLOP"),
                      ("machine peak (best float32 4096^3 matmul)", f"{peak / 1e9:.1f} GFLOP/s"),
                      ("ceiling at that peak", f"{peak / flops:.0f} images/s"),
                      ("LiteRT achieved", f"{achieved / 1e9:.1f} GFLOP/s = {100 * achieved / peak:.0f}% of peak")])
    return {"cold_start_s": cold, "keras": k, "litert": lt, "peak_gflops": peak / 1e9, "gflops_per_image": flops / 1e9,
            "litert_fraction_of_peak": achieved / peak,
            "decode_ms": {name: {"full": a, "draft": b} for name, a, b in decode}}


# -- models -----------------------------------------------------------------------------

MODELS = {"efficientnet_lite0": 75.1, "efficientnet_lite2": 77.6, "inception_v3": 77.9}  # published ImageNet top-1


def models_side(name: str, *mode: str) -> dict[str, Any]:
    out = subprocess.run([PY, "-m", "bench.models_side", name, repr(time.time()), *mode], cwd=REPO,
                         env=env(MODELS_DIR=models_dir()), check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_models() -> dict[str, Any]:
    """Lite0 and Lite2 as the functions serve them beside the seeds' Keras InceptionV3 (random weights: see
    bench/models_side.py), each in a fresh process, in the same run: decode + infer of the shipped photos."""
    from bench import yardstick

    got = {name: models_side(name) | {"cold_s": statistics.median(
        [models_side(name, "cold")["cold_s"] for _ in range(3)])} for name in MODELS}
    table("models side by side: decode + infer of the shipped photos, each model in its own process", [
        ("", *MODELS)] + [(label, *(fmt(got[name]) for name in MODELS)) for label, fmt in (
            ("ImageNet top-1 (published)", lambda r: f"{MODELS[r['model']]:.1f} %"),
            ("1 caller p50 / p99 (ms)", lambda r: f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f}"),
            ("1 caller (images/s)", lambda r: f"{r['images_per_s']:.1f}"),
            ("2 concurrent callers (images/s)", lambda r: f"{r['two_callers_images_per_s']:.1f}"),
            ("  vs the yardstick (2 callers in process, this run)",
             lambda r: f"{yardstick.ratio(r['two_callers_images_per_s']):.2f}x"),
            ("peak RSS (MB)", lambda r: f"{r['peak_rss_mb']:.0f}"),
            ("cold start to the first prediction, median of 3 (s)", lambda r: f"{r['cold_s']:.2f}"))])
    return {"models": got, "top1_published": MODELS, "inception_v3_weights": "random (weights=None): same timing",
            "yardstick": yardstick.entry(got["efficientnet_lite0"]["two_callers_images_per_s"])}


# -- http -------------------------------------------------------------------------------


def load(url: str, send: Callable[..., requests.Response], clients: int, seconds: float) -> tuple[float, list[float]]:
    """`clients` threads, each with its own keep-alive session, sending for `seconds`."""
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    failures: list[str] = []

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < stop:
            start = time.perf_counter()
            r = send(url, session)
            with lock:
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                else:
                    failures.append(f"{r.status_code} {r.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:  # a failed request must fail the benchmark, not just lower its figure
        raise RuntimeError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return len(latencies) / (time.perf_counter() - started), latencies


def cold_http(argv_env: Callable[[int], tuple[list[str], dict[str, str]]], send: Callable[[str], requests.Response],
              runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        port = free_port()
        argv, e = argv_env(port)
        start = time.perf_counter()
        server = Server("cold", argv, port, env=e, cwd=REPO)
        r = send(server.url)
        assert r.status_code in (200, 201), r.text[:200]
        times.append(time.perf_counter() - start)
        server.stop()
    return statistics.median(times)


def key_lookup_us(db: Path, key: str) -> float:
    """What a Bearer request costs the server for authentication: one SHA-256 and one indexed look-up."""
    from common.accounts.service import key_hash
    from common.adapters.store.sqlite import SqliteDocuments
    from common.records.store import Store

    store = Store(SqliteDocuments(db))
    runs = 2000
    start = time.perf_counter()
    for _ in range(runs):
        assert store.account_by_key(key_hash(key)) is not None
    return (time.perf_counter() - start) / runs * 1e6


def bench_http(tmp: Path) -> dict[str, Any]:
    from common.models.model import get_model

    model = get_model()
    data = photos.data("coffee.png")
    runs = []
    start = time.perf_counter()
    while time.perf_counter() - start < 5:
        t = time.perf_counter()
        model.predict(data)
        runs.append(time.perf_counter() - t)
    in_process = len(runs) / sum(runs)

    base = {"DATA_DIR": str(tmp), "MODELS_DIR": models_dir(), "BCRYPT_ROUNDS": "12",
            "ADMIN_USERNAME": "bench", "ADMIN_PASSWORD": "bench-password",
            "INITIAL_TOKENS": "5"}
    servers = {t: function(t, REPO / "functions" / t / "main.py", base) for t in ("register", "tokens", "classify")}
    try:
        key = requests.post(servers["register"].url + "/api-key", auth=("bench", "bench-password")).json()["api_key"]
        subprocess.run([PY, "-m", "common.ops.admin", "refill", "bench", "1000000"], cwd=REPO, env=env(**base),
                       check=True, capture_output=True)
        auth = {"Authorization": f"Bearer {key}"}
        def upload(url: str, http: Any = requests) -> requests.Response:
            return http.post(url + "/classify", headers=auth, files={"file": ("c.png", data)})

        load(servers["classify"].url, upload, 1, 1)  # warm up
        results = {c: load(servers["classify"].url, upload, c, 8) for c in (1, 2, 4)}
        p50, p99 = pct(results[1][1], 0.5) * 1000, pct(results[1][1], 0.99) * 1000
        best = max(results, key=lambda c: results[c][0])
        bearer: list[float] = []
        password: list[float] = []
        http = requests.Session()  # keep-alive, so the figures are the server's work, not TCP set-up
        for _ in range(20):
            t = time.perf_counter()
            http.get(servers["tokens"].url + "/tokens", headers=auth)
            bearer.append(time.perf_counter() - t)
            t = time.perf_counter()
            http.get(servers["tokens"].url + "/tokens", auth=("bench", "bench-password"))
            password.append(time.perf_counter() - t)
        register = []
        for i in range(5):
            t = time.perf_counter()
            http.post(servers["register"].url + "/register", json={"username": f"u{i}-{os.getpid()}",
                                                                       "password": "password123"})
            register.append(time.perf_counter() - t)
    finally:
        for s in servers.values():
            s.stop()
    lookup = key_lookup_us(tmp / "accounts.db", key)

    naive_port = free_port()
    naive = Server("naive", [PY, "-m", "bench.naive_app", str(naive_port)], naive_port, env=env(), cwd=REPO,
                   timeout=120)
    try:
        def plain(url: str, http: Any = requests) -> requests.Response:
            return http.post(url + "/classify", files={"file": ("c.png", data)})

        load(naive.url, plain, 1, 2)
        naive_results = {c: load(naive.url, plain, c, 8) for c in (1, 2)}
    finally:
        naive.stop()

    ff = str(Path(PY).parent / "functions-framework")

    def classify_cold(port: int) -> tuple[list[str], dict[str, str]]:
        return ([ff, "--source", str(REPO / "functions/classify/main.py"), "--target", "classify", "--host",
                 "127.0.0.1", "--port", str(port)], env(**base))

    def naive_cold(port: int) -> tuple[list[str], dict[str, str]]:
        return [PY, "-m", "bench.naive_app", str(port)], env()

    cold_classify = cold_http(classify_cold, upload)
    cold_naive = cold_http(naive_cold, plain, runs=2)
    n1 = naive_results[1][1]
    table("classify over HTTP (photo uploads, loopback, functions-framework)", [
        ("", "ImageClassify", "naive Flask + Keras", "ratio"),
        ("p50 at 1 client (ms)", f"{p50:.1f}", f"{pct(n1, 0.5) * 1000:.1f}", f"{pct(n1, 0.5) * 1000 / p50:.1f}x"),
        ("p99 at 1 client (ms)", f"{p99:.1f}", f"{pct(n1, 0.99) * 1000:.1f}", ""),
        ("images/s, 1 client", f"{results[1][0]:.1f}", f"{naive_results[1][0]:.1f}",
         f"{results[1][0] / naive_results[1][0]:.1f}x"),
        ("images/s, 2 clients", f"{results[2][0]:.1f}", f"{naive_results[2][0]:.1f}",
         f"{results[2][0] / naive_results[2][0]:.1f}x"),
        ("images/s, 4 clients", f"{results[4][0]:.1f}", "", ""),
        ("in-process decode+infer (images/s)", f"{in_process:.1f}", "", ""),
        (f"efficiency at best concurrency ({best})", f"{results[best][0] / in_process:.2f}", "", ""),
        ("cold start to first 200 (s)", f"{cold_classify:.2f}", f"{cold_naive:.2f}",
         f"{cold_naive / cold_classify:.1f}x"),
    ])
    table("authentication cost per request (GET /tokens, bcrypt cost 12)", [
        ("", "p50 (ms)"),
        ("Bearer API key (HTTP round trip, keep-alive)", f"{pct(bearer, 0.5) * 1000:.2f}"),
        ("  of which the key check in process (hash + look-up)", f"{lookup / 1000:.4f}"),
        ("HTTP Basic password", f"{pct(password, 0.5) * 1000:.1f}"),
        ("POST /register (bcrypt hash)", f"{statistics.median(register) * 1000:.1f}"),
    ])
    return {"in_process_images_per_s": in_process, "p50_ms": p50, "p99_ms": p99,
            "images_per_s": {c: r[0] for c, r in results.items()},
            "naive_images_per_s": {c: r[0] for c, r in naive_results.items()},
            "naive_p50_ms": pct(n1, 0.5) * 1000, "efficiency": results[best][0] / in_process,
            "best_concurrency": best, "cold_start_s": cold_classify, "naive_cold_start_s": cold_naive,
            "auth_ms": {"bearer_p50": pct(bearer, 0.5) * 1000, "password_p50": pct(password, 0.5) * 1000,
                        "key_check_in_process": lookup / 1000},
            "register_ms": statistics.median(register) * 1000}


# -- jobs -------------------------------------------------------------------------------


def bench_jobs(tmp: Path) -> dict[str, Any]:
    """A 200-image job through the local stack against two concurrent callers in process on the same photos
    (bench/yardstick.py), measured around it in the same run."""
    from bench.yardstick import around, two_callers
    from common.models.model import get_model

    names = bookkeeping.NAMES  # the photos its bookkeeping is measured on
    space = job_folders(tmp / "data", ["all"])
    model, datas = get_model(), [photos.data(name) for name in names]
    stack, user = job_stack(tmp / "data")
    try:
        limit_cpu: list[float] = []  # two callers in this process: their CPU per image, before and after
        (elapsed, cpu_ms, status), limit_rate = around(lambda: two_callers(model.predict, datas, cpu=limit_cpu),
                                                       lambda: sort_job(stack, user, "all/"))
    finally:
        stack.stop()
    if status["status"] != "done" or status["processed"] != 200:
        raise RuntimeError(f"the benchmark job did not sort its 200 images: {status}")
    rate, limit_cpu_ms = 200 / elapsed, sum(limit_cpu) / len(limit_cpu)
    copy_ms = output_copy_cpu_ms(tmp / "data", sorted(p.name for p in (space / "all").iterdir()))
    creating = file_creation_cpu_us(tmp), file_creation_cpu_us(Path(SYSTEM_TMP))
    books_ms, path_ms = bookkeeping_cpu_ms(tmp), path_cpu_ms(tmp / "stub", rate)
    ceiling = limit_cpu_ms / (limit_cpu_ms + path_ms)
    table("sort job: 200 images on the local stack (SQLite, bucket folder, durable local queue)", [
        ("", "value"), ("POST /jobs to done (s)", f"{elapsed:.2f}"), ("images/s end to end", f"{rate:.1f}"),
        ("in process, two callers (images/s)", f"{limit_rate:.1f}"),
        ("ratio (target >= 0.85)", f"{rate / limit_rate:.2f}"),
        ("CPU ms per image: the stack / two callers in process", f"{cpu_ms:.2f} / {limit_cpu_ms:.2f}"),
        ("of the cores, busy with the stack", f"{cpu_ms * rate / 1000 / (os.cpu_count() or 1):.0%}"),
        ("CPU ms per image of its output's copy alone (in process, a fresh folder)", f"{copy_ms:.2f}"),
        ("CPU us to create an empty file: the bench's folder / the system's temporary folder",
         f"{creating[0]:.0f} / {creating[1]:.0f}"),
        ("CPU ms per image of the worker's work besides the model (stub model, one at a time)", f"{books_ms:.2f}"),
        ("CPU ms per image of the whole job besides the model (the stack with a stub model at the job's pace: "
         "queue, HTTP push, worker)", f"{path_ms:.2f}"),
        ("ratio at best: every core busy, nothing waiting (two callers' CPU / theirs + the whole job's)",
         f"{ceiling:.2f}"),
        ("outcome", f"{status['matched']} unmatched={status['unmatched']} failed={status['failed']}")])
    return {"seconds": elapsed, "images_per_s": rate, "two_callers_images_per_s": limit_rate,
            "ratio": rate / limit_rate, "cpu_ms_per_image": cpu_ms, "two_callers_cpu_ms_per_image": limit_cpu_ms,
            "output_copy_cpu_ms": copy_ms, "file_creation_cpu_us": {"bench": creating[0], "system_tmp": creating[1]},
            "bookkeeping_cpu_ms": books_ms, "path_cpu_ms": path_ms, "ceiling_ratio": ceiling, "status": status}


def job_folders(data: Path, sources: list[str]) -> Path:
    """The bench user's space under `data`: 200 photos in each source folder, 16 in `warm`."""
    names, space = bookkeeping.NAMES, data / "bucket" / "users" / "bench"
    for folder in [*sources, "warm"]:
        (space / folder).mkdir(parents=True)
        for i in range(16 if folder == "warm" else 200):
            (space / folder / f"{i:03d}-{names[i % 5]}").write_bytes(photos.data(names[i % 5]))
    return space


def job_stack(data: Path, module: str = "infra.localstack", **env: str) -> tuple[LocalStack, dict[str, Any]]:
    """A running stack on `data` and its bench user, after a first job: it loads the model and grows the worker's
    interpreter pool, as the yardstick's callers warm theirs. What is measured is a job on a running stack."""
    stack = LocalStack(data, Path(models_dir()), module=module, BCRYPT_ROUNDS="4")
    stack.env.update(env)
    stack.start()
    try:
        user = stack.user("bench", 10_000)
        sort_job(stack, user, "warm/", ["food"])
    except BaseException:
        stack.stop()
        raise
    return stack, user


def sort_job(stack: LocalStack, user: dict[str, Any], source: str,
             classes: tuple[str, ...] | list[str] = ("food", "cat", "clothing")) -> tuple[float, float, dict[str, Any]]:
    """One job over `source`: seconds from POST /jobs to the job's own `ended`, the stack's CPU ms per image, and
    the job's last status. Polled at a user's pace (every 0.5 s), so the polls take no CPU from the job."""
    from bench.yardstick import cpu_seconds

    assert stack.proc is not None
    start, used = time.time(), cpu_seconds(stack.proc.pid)
    job = requests.post(stack.url + "/jobs", headers=user["headers"], timeout=60,
                        json={"classes": list(classes), "source": source}).json()
    status = stack.wait_job(user, job["id"], 300, every=0.5)
    return status["ended"] - start, 1000 * (cpu_seconds(stack.proc.pid) - used) / max(1, status["total"]), status


def path_cpu_ms(tmp: Path, rate: float, runs: int = 3) -> float:
    """The stack's CPU per image of a 200-image job with the stub model (bench/stub_stack.py): everything a job
    costs besides decoding and inference. Each stub prediction sleeps as long as the worker's threads took per
    image in the real job (`rate`), so the path runs at the same pace: at a stub's own pace it costs less per
    image. The least of `runs` jobs: new files' pages make single runs vary."""
    from common.core.config import settings
    from common.jobs.worker import batch_threads

    sources, threads = [f"all-{run}" for run in range(runs)], batch_threads(settings())
    job_folders(tmp / "data", sources)
    stack, user = job_stack(tmp / "data", "bench.stub_stack", STUB_MODEL_SECONDS=f"{threads / rate:.4f}")
    try:
        found = [sort_job(stack, user, f"{source}/") for source in sources]
    finally:
        stack.stop()
    if any(status["status"] != "done" or status["processed"] != 200 for _, _, status in found):
        raise RuntimeError(f"a stub job did not sort its 200 images: {[status for _, _, status in found]}")
    return min(cpu_ms for _, cpu_ms, _ in found)


def output_copy_cpu_ms(data: Path, names: list[str]) -> float:
    """What copying a job's outputs costs by itself: the bucket folder's copy of each image to a new folder (a
    new file's pages written, as a job's outputs are; the cloud's buckets copy on their side)."""
    from bench.yardstick import cpu_seconds
    from common.adapters.storage.local import LocalStorage

    storage, used = LocalStorage(data / "bucket", "bucket"), cpu_seconds()
    for name in names:
        storage.copy(f"users/bench/all/{name}", f"users/bench/copied/all/{name}")
    return 1000 * (cpu_seconds() - used) / len(names)


def file_creation_cpu_us(parent: Path, count: int = 200) -> float:
    """CPU microseconds to create one empty file in a new folder under `parent`: what the file system adds to
    every output a job writes, whatever the product does."""
    made = Path(tempfile.mkdtemp(dir=parent, prefix="created-"))
    try:
        used = time.process_time()
        for i in range(count):
            os.close(os.open(made / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return 1e6 * (time.process_time() - used) / count
    finally:
        shutil.rmtree(made, ignore_errors=True)


def bookkeeping_cpu_ms(tmp: Path, runs: int = 3) -> float:
    """The sort worker's CPU per image besides the model (bench/bookkeeping.py), the least of `runs`: new files'
    pages make single runs vary."""
    found = []
    for run in range(runs):
        done = subprocess.run([PY, "-m", "bench.bookkeeping", str(tmp / f"bookkeeping-{run}"), "200"], cwd=REPO,
                              env=env(MODELS_DIR=models_dir()), capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"bench.bookkeeping failed:\n{done.stderr[-3000:]}")
        found.append(float(json.loads(done.stdout.strip().splitlines()[-1])["cpu_ms_per_image"]))
    return min(found)


# -- bundles ----------------------------------------------------------------------------


def bench_bundles(tmp: Path) -> dict[str, Any]:
    from common.core.config import settings
    from infra import bundle_check, bundles

    out = tmp / "build"
    report = {}
    for target in sorted(TARGETS):
        bundle = bundles.build(target, out, settings().models.models_dir)
        venv = bundle_check.venv_for(bundle / "requirements.txt")
        colds = []
        for run in range(3):
            data_dir = tmp / f"{target}-{run}"
            env = {**bundle_check.SMOKE_ENV, "DATA_DIR": str(data_dir)}
            server, answer, seconds = bundle_check.start(target, bundle, venv, env,
                                                         bundle_check.smoke_request(target, data_dir))
            server.stop()
            assert answer.status_code < 300, answer.text
            colds.append(seconds)
        report[target] = {"source_mb": bundle_check.size_mb(bundle), "venv_mb": bundle_check.size_mb(venv),
                          "cold_start_s": statistics.median(colds)}
    table("bundles: each in a fresh venv with only its requirements", [("target", "source MB", "installed MB",
                                                                        "cold start (s, median of 3)")] + [
        (t, f"{r['source_mb']:.1f}", f"{r['venv_mb']:.0f}", f"{r['cold_start_s']:.2f}") for t, r in report.items()])
    return report


# -- pool -------------------------------------------------------------------------------


def pool_side(*args: str, **extra: str) -> dict[str, Any]:
    out = subprocess.run([PY, "-m", "bench.pool_side", *args], cwd=REPO, env=env(MODELS_DIR=models_dir(), **extra),
                         check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_pool() -> dict[str, Any]:
    """The pool shapes side by side in one process (ratios within it); the RSS of each in a process of its own."""
    shapes = "1x2,2x1,2x2"
    speed = pool_side("pool", shapes)
    layouts = [(s[0], s[-1], s[-1]) for s in shapes.split(",")] + [("2", "1", "2")]  # the last: the default
    memory = {name: pool_side("rss", MODEL_INTERPRETERS=n, MODEL_THREADS=t, MODEL_LEAD_THREADS=lead)["peak_rss_mb"]
              for name, (n, t, lead) in zip(speed, layouts, strict=True)}
    table("model pool in process: interpreters x XNNPACK threads (decode + infer; median of 5 rounds)", [
        ("", *speed)] + [(label, *(fmt(r) for r in speed.values())) for label, fmt in (
            ("1 caller (images/s)", lambda r: f"{r['sequential']:.1f}"),
            ("2 concurrent callers (images/s)",
             lambda r: f"{r['two_callers']:.1f} ({r['two_callers'] / r['sequential']:.2f}x)"),
            ("batch of 16, predict_many (images/s)",
             lambda r: f"{r['batch_16']:.1f} ({r['batch_16'] / r['sequential']:.2f}x)"),
            ("CPU per image: 1 caller / 2 callers (ms)",
             lambda r: f"{r['sequential_cpu_ms']:.1f} / {r['two_callers_cpu_ms']:.1f}"),
            ("batch max |dprob| vs singles", lambda r: f"{r['max_abs_dprob']:.1e}"))] + [
        ("peak RSS, own process (MB)", *(f"{memory[name]:.0f}" for name in speed))])
    photo = str(photos.path("grace_hopper.jpg"))
    cold = {warm: pool_side("cold", repr(time.time()), photo, MODEL_WARMUP=warm) for warm in ("0", "1")}
    table("classify start-up, step by step (ms, one run each)", [("step", "MODEL_WARMUP=0", "MODEL_WARMUP=1")] + [
        (step, *(f"{cold[w][step]:.1f}" for w in ("0", "1"))) for step in cold["1"]])
    return {"shapes": speed, "peak_rss_mb": memory, "cold_ms": cold}


# -- scale ------------------------------------------------------------------------------


def bench_scale(tmp: Path, earlier: dict[str, Any]) -> dict[str, Any]:
    """Run in a process of its own (it configures the Firestore store); each label's figures are kept beside the
    `earlier` runs' (results.json's as the bench started, even when every section runs), so the runs before and
    after a change sit side by side. Without SCALE_LABEL the run is `latest`, replacing the last unlabelled one."""
    tmp.mkdir(parents=True, exist_ok=True)
    out = tmp / "scale.json"
    subprocess.run([PY, "-m", "bench.scale", str(out)], cwd=REPO, env=env(MODELS_DIR=models_dir()), check=True)
    kept = {label: run for label, run in earlier.items() if label != "yardstick"}
    return {**kept, os.environ.get("SCALE_LABEL", "latest"): json.loads(out.read_text())}


def main() -> None:
    from bench import photos as phone_photos
    from bench import recovery, security, throughput, training, yardstick

    previous: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    sections: dict[str, Callable[[Path], Any]] = {
        "model": lambda _: bench_model(),
        "models": lambda _: bench_models(),
        "http": lambda tmp: bench_http(tmp),
        "jobs": lambda tmp: bench_jobs(tmp),
        "throughput": lambda tmp: throughput.run(tmp, models_dir()),
        "security": lambda tmp: security.run(tmp, models_dir()),
        "recovery": lambda tmp: recovery.run(tmp, models_dir()),
        "training": lambda tmp: training.run(tmp, models_dir()),
        "bundles": lambda tmp: bench_bundles(tmp),
        "pool": lambda _: bench_pool(),
        "scale": lambda tmp: bench_scale(tmp, previous.get("scale", {})),
        "photos": lambda tmp: phone_photos.run(tmp, models_dir()),
    }
    wanted = set(sys.argv[1:]) or set(sections)
    results: dict[str, Any] = dict(previous) if wanted < set(sections) else {}
    results["machine"] = {"cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    SCRATCH.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = tempfile.tempdir = str(SCRATCH)
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in sections.items():
            if name in wanted:
                results[name] = run(Path(tmp) / name)
                yardstick.report(name, results[name])  # each section against the limit measured in this run
                results["yardstick"] = yardstick.measured()
                RESULTS.write_text(json.dumps(results, indent=1, default=str) + "\n")  # keep what is done
    print(f"\nwritten to {RESULTS}")


if __name__ == "__main__":
    main()
