"""The interpreter pool and batches: concurrent callers and spread batches give exactly the one-at-a-time
numbers, the pool stays within its size, per-item errors stay in place, start-up warming is harmless."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from common.core import errors, parallel
from common.models.interpreters import Pool
from infra import photos
from tests import images as odd
from tests.conftest import configure

TOLERANCE = 1e-5  # max |Δprob| allowed between paths; in practice they are bit for bit equal


@pytest.fixture
def pooled(models_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh built-in model (backbone + head) on a pool of 2 single-threaded interpreters."""
    from common.models import layout as model_layout
    from common.models.backbone import DEFAULT, Backbone
    from common.models.model import Model

    configure(monkeypatch, MODELS_DIR=str(models_dir), MODEL_INTERPRETERS="2", MODEL_THREADS="1")
    model = Model.load("efficientnet_lite0", models_dir)
    assert model.backbone is not None
    model.backbone = Backbone.load(model_layout.features(models_dir, DEFAULT))  # its own pool, not the process-wide one
    return model


def sources() -> list[bytes]:
    return [photos.data(name) for name in photos.PHOTOS]


def test_concurrent_callers_get_the_sequential_results(pooled) -> None:
    datas = sources()
    expected = [pooled.predict(d) for d in datas]
    results: dict[tuple[int, int], np.ndarray] = {}

    def caller(t: int) -> None:
        for i in range(len(datas)):
            j = (i + t) % len(datas)
            results[(t, j)] = pooled.predict(datas[j])

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 * len(datas)
    for (_, j), got in results.items():
        assert np.abs(got - expected[j]).max() < TOLERANCE, photos.PHOTOS[j]
    assert 1 <= pooled.backbone.pool.interpreters <= 2


def test_pool_grows_only_when_busy_and_never_past_its_size(pooled) -> None:
    pool = pooled.backbone.pool
    assert pool.interpreters == 1  # one request at a time needs one
    crop = photos.crop("coffee.png")
    alone = pool.run(crop)
    assert pool.interpreters == 1
    busy = threading.Event()
    release = threading.Event()
    most = [0]

    def hold() -> None:
        with pool._lease():
            busy.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    busy.wait(10)
    assert np.array_equal(pool.run(crop), alone)  # a second interpreter, made because the first was busy
    assert pool.interpreters == 2

    def run() -> None:
        pool.run(crop)
        most[0] = max(most[0], pool.interpreters)

    waiting = [threading.Thread(target=run) for _ in range(4)]
    for thread in waiting:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in [holder, *waiting]:
        thread.join()
    assert pool.interpreters == 2 and most[0] == 2


def test_predict_many_equals_one_at_a_time_with_errors_in_place(pooled) -> None:
    def unreachable() -> bytes:
        raise errors.NotFound("There is no such object.", code="not_found")

    datas = sources()
    batch: list = [datas[0], odd.truncated_jpeg(), datas[1], b"", unreachable, b"%PDF-1.4", *datas[2:],
                   lambda: datas[0], odd.png_bomb()]
    got = pooled.predict_many(batch)
    assert len(got) == len(batch)
    codes = {i: g.code for i, g in enumerate(got) if isinstance(g, errors.AppError)}
    assert codes == {1: "undecodable_image", 3: "empty_image", 4: "not_found", 5: "not_an_image",
                     len(batch) - 1: "too_many_pixels"}
    for i, source in enumerate(batch):
        if i not in codes:
            expected = pooled.predict(source() if callable(source) else source)
            assert np.abs(got[i] - expected).max() < TOLERANCE, i
    assert got[0].shape == (1000,) and abs(got[0].sum() - 1) < 1e-9
    assert pooled.predict_many([]) == []


def test_a_bug_in_one_item_is_not_swallowed(pooled) -> None:
    def broken() -> bytes:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        pooled.predict_many([photos.data("coffee.png"), broken])


def test_whole_classifier_is_pooled_too(models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        pooled) -> None:
    from common.models.model import Model

    for name in ("efficientnet_lite0.tflite", "efficientnet_lite0.labels.json"):
        shutil.copy(models_dir / name, tmp_path / name)  # no backbone or head: the whole classifier serves
    whole = Model.load("efficientnet_lite0", tmp_path)
    assert whole.pool is not None and whole.backbone is None
    datas = sources()
    many = whole.predict_many(datas)
    for data, probs in zip(datas, many, strict=True):
        assert isinstance(probs, np.ndarray)
        assert np.abs(probs - whole.predict(data)).max() < TOLERANCE
        assert np.abs(probs - pooled.predict(data)).max() < 1e-4  # and what backbone + head give


def test_embed_batch_and_training_rows_equal_one_at_a_time(pooled) -> None:
    from common.training.pipeline import embed_images

    backbone = pooled.backbone
    crops = [photos.crop(name) for name in photos.PHOTOS]
    assert np.array_equal(backbone.embed_batch(crops), np.stack([backbone.embed(c) for c in crops]))
    images = [(f"k/{name}", photos.data(name)) for name in photos.PHOTOS] + [("k/bad.jpg", odd.truncated_jpeg())]
    views = {f"k/{name}": i % 3 for i, name in enumerate(photos.PHOTOS)}
    spread = embed_images(backbone, iter(images), lambda key: views.get(key, 0), seed=3)
    single = dataclasses.replace(backbone, pool=Pool(backbone.path, 1, 1))  # one interpreter: the sequential path
    alone = embed_images(single, iter(images), lambda key: views.get(key, 0), seed=3)
    assert spread.keys == alone.keys and spread.views == alone.views and spread.failed == alone.failed
    assert np.array_equal(spread.matrix(), alone.matrix())
    assert len(spread.keys) == len(photos.PHOTOS) + sum(views.values())
    assert [f["code"] for f in spread.failed] == ["undecodable_image"]


def test_ordered_map_keeps_order_bounds_read_ahead_and_raises() -> None:
    taken: list[int] = []

    def items():
        for i in range(40):
            taken.append(i)
            yield i

    def slow_square(i: int) -> int:
        time.sleep(0.001 * (i % 3))
        return i * i

    results = parallel.ordered_map(slow_square, items(), threads=2)
    assert next(results) == 0 and len(taken) <= 5  # at most twice the threads ahead of what is consumed
    assert list(results) == [i * i for i in range(1, 40)]

    def fails_on_three(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        return i

    with pytest.raises(ValueError, match="three"):
        list(parallel.ordered_map(fails_on_three, range(10), threads=2))

    def refuses_zero(i: int) -> int:
        if i == 0:
            raise errors.BadRequest("zero", code="zero")
        return i

    assert list(parallel.ordered_map(lambda _: threading.current_thread(), [0], 2)) == [threading.current_thread()]
    got = parallel.outcomes(refuses_zero, [1, 0, 2], threads=2)
    assert got[0] == 1 and got[2] == 2 and isinstance(got[1], errors.BadRequest) and got[1].code == "zero"


def test_a_shared_pool_keeps_its_threads_across_calls_and_stops_a_failed_call() -> None:
    """A queue worker's batches share the process's pool: the same threads (and what each keeps, a database
    connection) serve every batch; a failing item stops only its own call, whose work not yet started never runs."""
    pool = parallel.shared(2)
    assert parallel.shared(2) is pool
    first = set(parallel.ordered_map(lambda _: threading.current_thread().name, range(8), 2, pool))
    second = set(parallel.ordered_map(lambda _: threading.current_thread().name, range(8), 2, pool))
    assert first | second <= {f"shared_{i}" for i in range(2)}
    ran: list[int] = []

    def fails_on_one(i: int) -> int:
        ran.append(i)
        if i == 1:
            raise ValueError("one")
        time.sleep(0.01)
        return i

    with pytest.raises(ValueError, match="one"):
        list(parallel.ordered_map(fails_on_one, range(40), 2, pool))
    settled = len(ran)
    assert settled <= 6  # twice the threads ahead at most, and nothing after the call returned
    assert list(parallel.ordered_map(lambda i: i * 2, range(5), 2, pool)) == [0, 2, 4, 6, 8] and len(ran) == settled


def test_settings_refuse_a_pool_of_none(monkeypatch: pytest.MonkeyPatch) -> None:
    from common.core.config import settings

    for name, value in (("MODEL_INTERPRETERS", "0"), ("MODEL_THREADS", "-1"), ("MODEL_THREADS", "two")):
        monkeypatch.setenv(name, value)
        settings.cache_clear()
        with pytest.raises(RuntimeError, match=name):
            settings()
        monkeypatch.delenv(name)
    settings.cache_clear()
    assert settings().models.model_threads == 1 and settings().models.model_warmup


def test_start_up_warming_logs_a_missing_model_and_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    from common.models import model

    configure(monkeypatch, MODELS_DIR=str(tmp_path))
    monkeypatch.setattr(model._models, "loaded", {})  # models loaded by earlier tests of this process are not the point
    with caplog.at_level(logging.WARNING, "imageclassify.model"):
        model.warm()
    assert "not loaded at start-up" in caplog.text and "efficientnet_lite0" in caplog.text
    configure(monkeypatch, MODELS_DIR=str(tmp_path), MODEL_WARMUP="0")
    caplog.clear()
    model.warm()
    assert caplog.text == ""
