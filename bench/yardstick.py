"""The yardstick every bench section is read against: what this machine can do, measured in the same run.

The limit of decode + infer here is the in-process rate with every core busy: two concurrent callers of the
serving model (its interpreter pool as the functions configure it), in a fresh process. The lone caller's
rate and median latency come from the same process, for the sections that quote a latency. A section
reports its rate as a ratio to the two-caller rate (`report`, `entry`), so a reader sees at a glance how far
each path is from the limit. Measured once per run and image set (`get`), kept in results.json as
`yardstick`.

`two_callers` and `around` measure the same limit for a path's own work (a job's images, a training run's views),
taken before and after its run and averaged, so what other processes do to the cores falls on both sides alike.

`python -m bench.yardstick [FILE ...]` (default: the shipped photos) prints one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from infra.processes import REPO

T = TypeVar("T")
ROUNDS, PER_ROUND = 5, 32
_measured: dict[str, dict[str, float]] = {}


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system, every thread) of this process, or of process `pid` (from /proc)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def caller_rates(predict: Callable[[bytes], Any], datas: list[bytes], rounds: int = ROUNDS,
                 per_round: int = PER_ROUND, cpu: list[float] | None = None,
                 ) -> tuple[list[float], list[float], list[float]]:
    """Over `rounds`, alternated so what other processes do to the cores falls on both alike: one caller's images/s
    and two concurrent callers' images/s per round, and the lone caller's latencies (s). `cpu` gets the CPU ms
    per image of each round of two callers."""
    batch = [datas[i % len(datas)] for i in range(per_round)]
    latencies: list[float] = []

    def one_caller(record: bool = False) -> None:
        for data in batch:
            start = time.perf_counter()
            predict(data)
            if record:
                latencies.append(time.perf_counter() - start)

    def both() -> None:
        threads = [threading.Thread(target=one_caller) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    both()  # grow and warm the pool (or TensorFlow's graph)
    lone, two = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        one_caller(record=True)
        lone.append(per_round / (time.perf_counter() - start))
        start, used = time.perf_counter(), cpu_seconds()
        both()
        two.append(2 * per_round / (time.perf_counter() - start))
        if cpu is not None:
            cpu.append(1000 * (cpu_seconds() - used) / (2 * per_round))
    return lone, two, latencies


def _rates(datas: list[bytes]) -> dict[str, float]:
    """Median over ROUNDS of: one caller's images/s, two concurrent callers' images/s; the lone caller's p50."""
    from common.models.model import get_model

    cpu: list[float] = []
    lone, two, latencies = caller_rates(get_model().predict, datas, cpu=cpu)
    return {"two_callers_images_per_s": statistics.median(two), "lone_images_per_s": statistics.median(lone),
            "lone_p50_ms": 1000 * statistics.median(latencies), "two_callers_cpu_ms_per_image": statistics.median(cpu)}


def measure(datas: list[bytes]) -> dict[str, float]:
    """The yardstick for these images, in a fresh process with the functions' default pool."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, data in enumerate(datas):
            files.append(Path(tmp) / f"{i}.img")
            files[-1].write_bytes(data)
        out = subprocess.run([sys.executable, "-m", "bench.yardstick", *map(str, files)], cwd=REPO, check=True,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def get(name: str = "photos", datas: list[bytes] | None = None) -> dict[str, float]:
    """The yardstick for an image set, measured at its first use in this run (the shipped photos by default)."""
    if name not in _measured:
        from infra import photos

        _measured[name] = measure(datas or [photos.data(p) for p in photos.PHOTOS])
    return _measured[name]


def measured() -> dict[str, dict[str, float]]:
    """Every yardstick this run measured, for results.json."""
    return dict(_measured)


def ratio(rate: float, name: str = "photos") -> float:
    return rate / get(name)["two_callers_images_per_s"]


def cell(rate: float | None, name: str = "photos") -> str:
    """`rate` as a ratio to the yardstick, or n/a for a section that measures no rate."""
    limit = get(name)["two_callers_images_per_s"]
    return f"{rate:.1f} / {limit:.1f} = {rate / limit:.2f}x" if rate is not None else f"n/a (yardstick {limit:.1f})"


def entry(rate: float | None, name: str = "photos") -> dict[str, Any]:
    """What results.json keeps for a section: the yardstick and the ratio to it."""
    limit = get(name)["two_callers_images_per_s"]
    return {"images_per_s": limit, "set": name, "ratio": None if rate is None else rate / limit}


def _best(rates: dict[Any, float]) -> float:
    return max(rates.values())


# what each section's rate is, read from its results (None: the section measures no decode + infer rate)
RATES: dict[str, tuple[str, Callable[[dict[str, Any]], float | None]]] = {
    "model": ("LiteRT inference alone, one caller, no decode", lambda r: r["litert"]["images_per_s"]),
    "http": ("HTTP classify under functions-framework, best client count", lambda r: _best(r["images_per_s"])),
    "jobs": ("200-image sort job, POST to done", lambda r: r["images_per_s"]),
    "security": ("none: classify latency during a flood", lambda r: None),
    "recovery": ("the uninterrupted job", lambda r: r.get("images", 200) / r["baseline_job_s"]),
    "training": ("custom-model embedding", lambda r: r["embedding_images_per_s"]),
    "bundles": ("none: sizes and cold starts", lambda r: None),
    "pool": ("two callers, the default pool in its own process", lambda r: r["shapes"]["lead 2 + 1"]["two_callers"]),
    "scale": ("none: a stub model", lambda r: None),
    "photos": ("a 12 MP JPEG classified end to end, one caller",
               lambda r: 1000 / r["parts_ms"]["12 MP JPEG (q90)"]["end to end"]),
}


def report(section: str, result: Any) -> None:
    """Print a section's ratio to the yardstick under its table, and keep it in its results (`yardstick`);
    a section that prints its own (throughput, models) is left as it is."""
    if section not in RATES or not isinstance(result, dict) or "yardstick" in result:
        return
    label, rate_of = RATES[section]
    try:
        rate = rate_of(result)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):  # a section whose figures changed shape
        rate = None
    from bench.report import table

    table(f"{section} vs the yardstick (2 concurrent callers in process, this run)",
          [("rate", "img/s / yardstick"), (label, cell(rate))])
    result["yardstick"] = entry(rate)


# A path's own limit, for sections that run other work than the shipped photos (a job's images, training views):
# the same work by two concurrent callers here, taken just before and after the path's run.

def two_callers(work: Callable[[T], object], items: Sequence[T], seconds: float = 4.0,
                cpu: list[float] | None = None) -> float:
    """Items per second of `work` called by two threads at once, each going round `items` from its own end,
    for about `seconds` (after one warm-up call each). `cpu` gets the CPU ms per item of the run."""
    for item in items[:2]:
        work(item)
    counts = [0, 0]
    deadline = time.perf_counter() + seconds

    def caller(index: int) -> None:
        order = items if index == 0 else list(reversed(items))
        while time.perf_counter() < deadline:
            work(order[counts[index] % len(order)])
            counts[index] += 1

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(2)]
    start, used = time.perf_counter(), cpu_seconds()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if cpu is not None:
        cpu.append(1000 * (cpu_seconds() - used) / max(1, sum(counts)))
    return sum(counts) / (time.perf_counter() - start)


def around(measure: Callable[[], float], run: Callable[[], T]) -> tuple[T, float]:
    """`run()`'s result and the mean of `measure()` taken just before and just after it."""
    before = measure()
    result = run()
    return result, (before + measure()) / 2


def main() -> None:
    from infra import photos

    files = sys.argv[1:]
    datas = [Path(f).read_bytes() for f in files] if files else [photos.data(p) for p in photos.PHOTOS]
    print(json.dumps(_rates(datas)))


if __name__ == "__main__":
    main()
