"""EfficientNet-Lite2, the more accurate built-in model: its Keras port against the original PyTorch network's
logits (tests/data/efficientnet_lite2_reference.npz, made by infra/make_reference.py), its `.tflite`, and its
backbone + head. The model is built once per session into a temporary folder (about half a minute)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infra import photos
from tests.conftest import REPO

NAME = "efficientnet_lite2"
REFERENCE = REPO / "tests" / "data" / f"{NAME}_reference.npz"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    from infra.build_model import build

    out = tmp_path_factory.mktemp("lite2")
    return out, build(NAME, None, out)


def top5(logits: np.ndarray) -> list[list[int]]:
    return [list(map(int, np.argsort(row)[::-1][:5])) for row in logits]


def test_port_matches_the_pytorch_reference(built: tuple[Path, dict[str, Any]]) -> None:
    _, report = built
    assert report["max_abs_logit_diff"] <= 1e-4  # the build refuses beyond; measured about 1e-5
    assert report["top5_agree"] == len(photos.PHOTOS)


def test_tflite_gives_the_reference_top5(built: tuple[Path, dict[str, Any]]) -> None:
    from infra.build_model import tflite_logits

    out, _ = built
    ref = np.load(REFERENCE)
    got = tflite_logits((out / f"{NAME}.tflite").read_bytes(), ref["crops"])
    assert np.abs(got - ref["logits"]).max() < 1e-3
    assert top5(got) == top5(ref["logits"])
    labels = json.loads((out / f"{NAME}.labels.json").read_text())
    assert (labels["model"], labels["input_size"], labels["resize"]) == (NAME, 260, 292)
    assert labels["classes"][int(np.argmax(got[photos.PHOTOS.index("coffee.png")]))]["label"] == "espresso"


def test_backbone_and_head_reproduce_the_classifier(built: tuple[Path, dict[str, Any]]) -> None:
    from infra.build_model import tflite_logits

    out, report = built
    backbone = report["backbone"]
    assert backbone["max_abs_logit_diff"] <= 1e-4 and backbone["max_abs_diff_vs_tflite_classifier"] <= 1e-4
    assert backbone["top5_agree"] == len(photos.PHOTOS) and backbone["features"] == 1280
    crops = np.load(REFERENCE)["crops"]  # and again here, from the files as written
    features = tflite_logits((out / f"{NAME}_features.tflite").read_bytes(), crops)
    with np.load(out / f"{NAME}.head.npz") as head:
        logits = features @ head["weights"] + head["bias"]
    whole = tflite_logits((out / f"{NAME}.tflite").read_bytes(), crops)
    assert features.shape == (len(crops), 1280) and np.abs(logits - whole).max() < 1e-4
    assert json.loads((out / f"{NAME}.head.json").read_text())["backbone"] == f"{NAME}_features"
