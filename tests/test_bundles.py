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


GCLOUD_LIB = Path("/usr/lib/google-cloud-sdk/lib")


def gcloud_zip(source: Path, out: Path) -> list[str]:
    """The archive `gcloud functions deploy --source <source>` uploads, made by the SDK's own function (it
    follows no symlink), extracted into `out`; its member names."""
    import subprocess
    import sys
    import zipfile

    if not (GCLOUD_LIB / "googlecloudsdk").exists():
        pytest.fail(f"the Google Cloud SDK is not in {GCLOUD_LIB}: install google-cloud-cli")
    code = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[1] + '/third_party']\n"
            "from googlecloudsdk.command_lib.functions import source_util\n"
            "print(source_util.CreateSourcesZipFile(sys.argv[2], sys.argv[3]))")
    out.mkdir(parents=True)
    made = subprocess.run([sys.executable, "-c", code, str(GCLOUD_LIB), str(out), str(source)], capture_output=True,
                          text=True, timeout=120, check=True).stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(made) as archive:
        archive.extractall(out / "source")
        return sorted(archive.namelist())


@pytest.mark.slow
@pytest.mark.parametrize("target", ["register", "classify"])
def test_gcloud_deploys_a_bundle_folder_that_runs(built: Path, target: str, tmp_path: Path) -> None:
    """The README's `gcloud functions deploy ... --source build/<target>`: gcloud's own zip of that folder holds a
    real common/ (and the model), and the target runs from what was zipped. functions/<folder> would not do:
    its common/ is a symlink, which gcloud's zip leaves out."""
    folder = TARGETS[target].source.parent
    from_folder = [n for n in gcloud_zip(folder, tmp_path / "folder") if not n.startswith("__pycache__/")]
    assert from_folder == ["main.py", "requirements.txt"]  # (a test that ran the folder may leave __pycache__)
    names = gcloud_zip(built / target, tmp_path / "bundle")
    assert "common/__init__.py" in names and "main.py" in names
    assert ("models/efficientnet_lite0_features.tflite" in names) == TARGETS[target].model
    source = tmp_path / "bundle" / "source"
    venv = bundle_check.venv_for(source / "requirements.txt")
    env = {**bundle_check.SMOKE_ENV, "DATA_DIR": str(tmp_path / "data")}
    server, answer, _ = bundle_check.start(target, source, venv, env, bundle_check.smoke_request(target, tmp_path))
    try:
        assert answer.status_code in (200, 201), answer.text
    finally:
        server.stop()
