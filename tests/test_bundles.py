"""Each bundle runs on its own: a fresh virtual environment with only its requirements, started by
functions-framework from the bundle's folder (the repository is not on sys.path), answering a real request."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from infra import bundle_check, bundles
from infra.targets import TARGETS

HEAVY = {"tensorflow", "tensorflow-cpu", "keras", "numpy", "tf-keras"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("build")
    for target in TARGETS:
        bundles.build(target, out, models_dir)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_bundle_runs_alone(built: Path, target: str, tmp_path: Path) -> None:
    bundle = built / target
    assert (bundle / "common" / "__init__.py").exists() and (built / f"{target}.zip").exists()
    venv = bundle_check.venv_for(bundle / "requirements.txt")
    packages = bundle_check.installed(venv)
    light_folder = not any(t.model for t in TARGETS.values() if t.folder == TARGETS[target].folder)
    if light_folder:  # auth, database and storage only: no numpy, no model (their cold start is small)
        assert not packages & HEAVY, packages & HEAVY
        assert "ai-edge-litert" not in packages and not (bundle / "models").exists()
    elif not TARGETS[target].model:
        assert not (bundle / "models").exists()
    else:
        assert "ai-edge-litert" in packages and not packages & {"tensorflow", "tensorflow-cpu", "keras"}
        assert (bundle / "models" / "efficientnet_lite0_features.tflite").exists()
        assert not (bundle / "models" / "efficientnet_lite0.tflite").exists()  # the backbone + head serve it
    env = {**bundle_check.SMOKE_ENV, "DATA_DIR": str(tmp_path)}
    server, answer, seconds = bundle_check.start(target, bundle, venv, env, bundle_check.smoke_request(target, tmp_path))
    try:
        assert answer.status_code in (200, 201, 202), answer.text
        if target == "classify":
            assert answer.json()["predictions"][0]["label"] == "espresso"
        if target == "web":
            assert "<title>ImageClassify console</title>" in answer.text
            assert requests.get(server.url + "/openapi.json", timeout=10).json()["openapi"] == "3.1.0"
        if target == "on_upload":
            labels = json.loads((tmp_path / "bucket" / "labels" / "inbox" / "c.png.json").read_text())
            assert labels["predictions"][0]["label"] == "espresso"
    finally:
        server.stop()
    assert seconds < 30
