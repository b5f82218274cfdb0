"""The jobs section's measuring tools (bench/run.py): the stack with the stub model that gives a job's cost
besides the model, and the file system's cost of creating a file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench import run


def test_the_stub_stack_sorts_a_job_at_the_pace_asked(models_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run, "models_dir", lambda: str(models_dir))
    started = time.monotonic()
    cpu_ms = run.path_cpu_ms(tmp_path, rate=400.0, runs=2)  # 4 worker threads: each stub prediction sleeps 10 ms
    assert 0 < cpu_ms < 50  # the stack's CPU per image, without decoding or inference
    # 2 jobs of 200 images, 10 ms asleep per image on 4 threads: at least a second in all
    assert time.monotonic() - started > 2 * 200 * 0.010 / 4
    space = tmp_path / "data" / "bucket" / "users" / "bench"
    outputs = [p for p in space.rglob("*") if p.is_file() and p.relative_to(space).parts[0] not in
               ("all-0", "all-1", "warm")]
    assert len(outputs) == 2 * 200 + 16  # every image sorted into a class folder (the warm-up job's too)


def test_creating_a_file_is_measured_and_leaves_nothing(tmp_path: Path) -> None:
    assert run.file_creation_cpu_us(tmp_path, count=20) >= 0
    assert list(tmp_path.iterdir()) == []
