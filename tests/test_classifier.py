"""One classifier interface, vocabulary apart from the predictor: creating a job checks class names with no
interpreter started; a process that serves Lite0 only never loads Lite2; Lite2's crop comes from its labels
file; built-in and custom models are the same `Model`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from common.core import errors
from common.models import backbone as backbone_module
from common.models import interpreters, vocabulary
from common.models import model as model_module
from infra import photos
from tests.conftest import configure


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lite2_dir: Path) -> list[str]:
    """The .tflite files whose interpreters this test starts, in a process with nothing loaded yet."""
    configure(monkeypatch, MODELS_DIR=str(lite2_dir), DATA_DIR=str(tmp_path), SQLITE_PATH=str(tmp_path / "a.db"),
              STORE_BACKEND="sqlite", STORAGE_BACKEND="local", BUCKET_DIR=str(tmp_path / "bucket"))
    monkeypatch.setattr(model_module._models, "loaded", {})
    monkeypatch.setattr(backbone_module._backbones, "loaded", {})
    monkeypatch.setattr(vocabulary._builtins, "loaded", {})
    seen: list[str] = []
    real = interpreters.Pool.__init__

    def recording(self: interpreters.Pool, path: Path, *args: Any, **kwargs: Any) -> None:
        seen.append(Path(path).name)
        real(self, path, *args, **kwargs)

    monkeypatch.setattr(interpreters.Pool, "__init__", recording)
    return seen


class Published:
    """The queue of the job's messages (what is published is not the question here)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def publish(self, messages: list[Any]) -> None:
        self.messages.extend(messages)


def test_creating_a_job_loads_no_interpreter(loads: list[str]) -> None:
    from common.adapters.backends import get_storage, get_store
    from common.adapters.deps import Deps
    from common.core.config import settings
    from common.jobs.service import create_job

    store = get_store()
    store.create_account("ann", "hash", "key-ann", 10)
    account = store.get_account("ann")
    assert account is not None
    get_storage().write("users/ann/all/a.png", photos.data("coffee.png"))
    queue = Published()
    deps = Deps(settings(), store=store, storage=get_storage(), queue=queue)  # type: ignore[arg-type]
    for model in (None, "efficientnet_lite0", "efficientnet_lite2"):
        job = create_job(account, {"classes": ["dog", "Sports Car", "n07920052"], "model": model}, deps)
        assert job.model == (model or "efficientnet_lite0") and job.total == 1
        with pytest.raises(errors.BadRequest) as unknown:
            create_job(account, {"classes": ["dgo"], "model": model}, deps)
        assert unknown.value.code == "unknown_class" and "dingo" in unknown.value.message
    with pytest.raises(errors.NotFound):
        create_job(account, {"classes": ["dog"], "model": "efficientnet_lite9"}, deps)
    assert len(queue.messages) == 3
    assert loads == []  # not one interpreter, not one warm-up inference


def test_a_process_serving_lite0_never_loads_lite2(loads: list[str]) -> None:
    from common.bootstrap import bootstrap
    from common.models.registry import resolve

    deps = bootstrap()  # the configured store and bucket: neither holds a model of ann's
    model = resolve("ann", None, deps)
    assert model.top(model.predict(photos.data("coffee.png")), 1)[0]["label"] == "espresso"
    assert loads and all(name.startswith("efficientnet_lite0") for name in loads), loads
    resolve("ann", "efficientnet_lite2", deps)
    assert any(name.startswith("efficientnet_lite2") for name in loads), loads


def test_lite2_crops_as_its_labels_file_says(loads: list[str]) -> None:
    from common.models.backbone import get_backbone
    from common.models.model import get_model

    lite2 = get_model("efficientnet_lite2")
    assert (lite2.input_size, lite2.resize) == (260, 292)  # not round(260 * 256 / 224) = 297
    assert (get_backbone("efficientnet_lite2").input_size, get_backbone("efficientnet_lite2").resize) == (260, 292)
    top = lite2.top(lite2.predict(photos.data("coffee.png")), 5)
    assert top[0]["label"] == "espresso" and len(top) == 5 and "wnid" in top[0]
    assert lite2.vocabulary is vocabulary.builtin("efficientnet_lite2")  # one vocabulary per model per process


def test_a_head_trained_on_lite2_serves_on_lite2(loads: list[str]) -> None:
    """`pipeline.train` records the backbone in the head, and the registry serves the head on that backbone."""
    import numpy as np

    from common.models.heads import Head
    from common.models.registry import backbone_of
    from common.training.pipeline import train

    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 1280)).astype(np.float32)
    y = np.arange(30) % 2
    rows = {part: (x, y) for part in ("train", "validation", "test")}
    head, _ = train(rows, ["a", "b"], backbone="efficientnet_lite2", max_seconds=30)
    assert backbone_of(head) == "efficientnet_lite2"
    old = Head(head.weights, head.bias, head.labels, {"kind": "custom", "backbone": "efficientnet_lite0_features"})
    assert backbone_of(old) == "efficientnet_lite0"  # heads trained before the choice
    assert backbone_of(Head(head.weights, head.bias, head.labels)) == "efficientnet_lite0"
    assert loads == []
