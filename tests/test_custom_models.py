"""One backbone, many heads: the built-in model as backbone + head, heads on disk, training end to end
on real images (animal-mnist silhouettes, sklearn's digits) with the real backbone."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from common.models.classnames import normalise_class
from common.models.heads import Head, HeadError, load_head
from common.training.confusion_png import render
from common.training.dataset import list_dataset
from common.training.pipeline import embed_images, run
from infra import photos
from tests import animals
from tests import images as odd


@pytest.fixture
def backbone(lite0):
    from common.models.backbone import get_backbone

    return get_backbone()


# -- the built-in model as backbone + head -----------------------------------------------


def full_classifier_logits(models_dir: Path, crop: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(models_dir / "efficientnet_lite0.tflite"))
    interp.allocate_tensors()
    interp.set_tensor(interp.get_input_details()[0]["index"], crop[None].astype(np.float32))
    interp.invoke()
    return np.array(interp.get_tensor(interp.get_output_details()[0]["index"])[0])


def test_builtin_model_is_served_as_backbone_plus_head_with_the_same_top5(lite0, models_dir: Path) -> None:
    assert lite0.backbone is not None and lite0.head is not None and lite0.pool is None
    assert lite0.head.weights.shape == (1280, 1000) and lite0.head.labels == lite0.labels
    for name in photos.PHOTOS:
        crop = photos.crop(name)
        full = full_classifier_logits(models_dir, crop)
        served = lite0.logits(crop)
        assert np.abs(served - full).max() < 1e-4, name
        assert list(np.argsort(served)[::-1][:5]) == list(np.argsort(full)[::-1][:5]), name


def test_builtin_labels_are_unique_and_readable(lite0) -> None:
    from infra.build_model import labels_file

    built = [c["label"] for c in labels_file("efficientnet_lite0")["classes"]]
    for labels in (built, lite0.labels):
        assert len(labels) == 1000 and len({normalise_class(label) for label in labels}) == 1000
    assert (lite0.labels[657], lite0.labels[744]) == ("missile", "projectile")
    assert (lite0.labels[836], lite0.labels[837]) == ("sunglass lens", "sunglasses")
    assert lite0.resolve("sunglasses") == {"n04356056"}  # class matching still goes by WordNet lemmas


def test_a_duplicate_label_fails_the_build() -> None:
    from infra.build_model import check_unique

    with pytest.raises(SystemExit, match="classes 0 and 2"):
        check_unique(["missile", "tank", "Missile"])


def test_backbone_embeds_one_and_many_the_same(backbone) -> None:
    crops = [photos.crop(name) for name in photos.PHOTOS[:3]]
    one = backbone.embed(crops[0])
    assert one.shape == (1280,) and one.dtype == np.float32 and np.isfinite(one).all() and one.min() >= 0
    many = backbone.embed_batch(crops)
    assert many.shape == (3, 1280) and np.array_equal(many[0], one)
    with pytest.raises(ValueError):
        backbone.embed(np.zeros((100, 100, 3), np.uint8))


def test_backbone_is_shared_and_thread_safe(backbone) -> None:
    from common.models.backbone import get_backbone

    assert get_backbone() is backbone
    crops = [photos.crop(name) for name in photos.PHOTOS]
    expected = [backbone.embed(c) for c in crops]
    results: dict[tuple[int, int], np.ndarray] = {}

    def worker(t: int) -> None:
        for i in range(len(crops)):
            results[(t, i)] = backbone.embed(crops[(i + t) % len(crops)])

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for (t, i), got in results.items():
        assert np.array_equal(got, expected[(i + t) % len(crops)])


# -- heads on disk -----------------------------------------------------------------------


def small_head() -> Head:
    rng = np.random.default_rng(0)
    return Head(rng.normal(size=(1280, 3)).astype(np.float32), np.zeros(3, np.float32), ["cat", "dog", "emu"],
                {"kind": "custom", "metrics": {"accuracy": 0.9}})


def test_head_round_trip_and_cache(tmp_path: Path) -> None:
    head = small_head()
    head.save(tmp_path, "pets")
    started = time.perf_counter()
    loaded = load_head(tmp_path, "pets")
    assert time.perf_counter() - started < 0.5  # an npz read, not a rebuild
    assert np.array_equal(loaded.weights, head.weights) and loaded.labels == head.labels
    assert loaded.meta == head.meta
    assert load_head(tmp_path, "pets") is loaded  # cached
    Head(head.weights * 2, head.bias, head.labels).save(tmp_path, "pets")
    assert np.array_equal(load_head(tmp_path, "pets").weights, head.weights * 2)  # a new file is reloaded
    probs = loaded.probabilities(np.ones((4, 1280), np.float32))
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1)
    assert np.allclose(loaded.probabilities(np.ones(1280, np.float32)), probs[0])


def npz(**arrays: object) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("make", [
    lambda good, side: (npz(weights=np.array([object()], dtype=object), bias=np.zeros(1)), side),  # a pickle inside
    lambda good, side: (npz(weights=np.zeros((1280, 3), np.float32)), side),  # bias missing
    lambda good, side: (good[: len(good) // 2], side),  # truncated
    lambda good, side: (b"", side),
    lambda good, side: (pickle.dumps(np.zeros(3)), side),  # a bare pickle
    lambda good, side: (good, b"{not json"),
    lambda good, side: (good, json.dumps({"format": "imageclassify-head/1", "labels": ["a", "b"]}).encode()),
    lambda good, side: (good, json.dumps({"format": "imageclassify-head/1", "labels": ["a", "A", "b"]}).encode()),
    lambda good, side: (good, json.dumps({"labels": ["a", "b", "c"]}).encode()),  # not our sidecar
    lambda good, side: (npz(weights=np.full((1280, 3), np.nan, np.float32), bias=np.zeros(3, np.float32)), side),
    lambda good, side: (npz(weights=np.zeros((1280, 3)), bias=np.zeros(3)), side),  # float64
    lambda good, side: (good + b"\0" * (17 * 1024 * 1024), side),  # too large
])
def test_malformed_and_hostile_heads_are_refused(make) -> None:
    good, side = small_head().to_files()
    data, sidecar = make(good, side)
    with pytest.raises(HeadError):
        Head.from_files(data, sidecar)


# -- training end to end with the real backbone ------------------------------------------


def test_animal_mnist_loads_without_its_tensorflow_loader() -> None:
    import sys

    from infra import animals as source

    images, labels = source.load()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10 and len(source.CLASSES) == 10
    assert "tensorflow" not in sys.modules or "animal_mnist.dataset_Loader" not in sys.modules


def test_restricted_unpickler_refuses_anything_but_arrays() -> None:
    from infra.animals import load_arrays

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_arrays(pickle.dumps(Evil()))
    with pytest.raises(pickle.UnpicklingError):
        load_arrays(pickle.dumps({"not": "an array"}))
    assert load_arrays(gzip.decompress(gzip.compress(pickle.dumps(np.arange(3))))).tolist() == [0, 1, 2]


def train_on(files: dict[str, bytes], prefix: str, backbone, views: int):
    dataset = list_dataset(files, prefix)
    head, metrics, embedded = run(dataset, files.__getitem__, backbone, views=views, seed=0)
    print(f"\n{prefix}: {dataset.images} images, {views} views: accuracy {metrics['accuracy']}, macro F1 "
          f"{metrics['macro_f1']}, embed {metrics['timing']['embed_seconds']} s for {metrics['timing']['rows']} "
          f"rows, fit {metrics['fit']['seconds']} s (L2 {metrics['fit']['l2']})")
    return dataset, head, metrics, embedded


@pytest.mark.slow  # embeds over a thousand real images
def test_train_animal_silhouettes_end_to_end(backbone) -> None:
    files = animals.animal_folder(per_class=50)
    dataset, head, metrics, embedded = train_on(files, "users/ann/animals/", backbone, views=2)
    assert metrics["split"] == {"train": 400, "validation": 50, "test": 50}
    assert metrics["accuracy"] >= 0.9 and metrics["macro_f1"] >= 0.85
    assert set(metrics["per_class"]) == set(dataset.labels) and not embedded.failed
    assert all(row["roc_auc"] is not None and row["roc_auc"] > 0.8 for row in metrics["per_class"].values())
    matrix = np.array(metrics["confusion_matrix"]["matrix"])
    assert matrix.sum() == 50 and np.trace(matrix) == round(metrics["accuracy"] * 50)
    assert metrics["timing"]["rows"] == 400 * 3 + 100  # views for training images only
    # the head serves: a fresh silhouette of each class, through the same code path as the built-in model
    fresh = animals.animal_folder(per_class=3, seed=99)
    crops = [backbone.prepare(data) for data in fresh.values()]
    predicted = head.probabilities(backbone.embed_batch(crops)).argmax(axis=1)
    truth = [dataset.labels.index(key.split("/")[3]) for key in fresh]
    assert (predicted == np.array(truth)).mean() >= 0.8
    from PIL import Image

    png = Image.open(io.BytesIO(render(metrics["confusion_matrix"]["labels"], matrix)))
    assert png.format == "PNG" and 300 <= png.width <= 1200


@pytest.mark.slow  # embeds over a thousand real images
def test_train_digits_end_to_end(backbone) -> None:
    files = animals.digits_folder(per_class=100)
    _, head, metrics, _ = train_on(files, "users/ann/digits/", backbone, views=0)
    assert metrics["accuracy"] >= 0.85
    assert head.labels == [f"digit_{d}" for d in range(10)] and head.weights.shape == (1280, 10)


def test_undecodable_images_are_skipped_and_reported(backbone) -> None:
    files = animals.animal_folder(per_class=6, prefix="users/ann/zoo/")
    files["users/ann/zoo/cat/broken.jpg"] = odd.truncated_jpeg()
    files["users/ann/zoo/dog/letter.png"] = b"Dear Sir, this is not a PNG."
    files["users/ann/zoo/cow/empty.gif"] = b""
    files["users/ann/zoo/bear/bomb.png"] = odd.png_bomb()
    dataset, head, metrics, embedded = train_on(files, "users/ann/zoo/", backbone, views=0)
    failed = {f["key"]: f["code"] for f in embedded.failed}
    assert failed == {"users/ann/zoo/cat/broken.jpg": "undecodable_image", "users/ann/zoo/dog/letter.png":
                      "not_an_image", "users/ann/zoo/cow/empty.gif": "empty_image",
                      "users/ann/zoo/bear/bomb.png": "too_many_pixels"}
    assert dataset.images == 64 and metrics["timing"]["rows"] == 60 and len(head.labels) == 10


def test_embed_images_adds_seeded_views(backbone) -> None:
    images = [("a/x.png", photos.data("coffee.png")), ("a/y.png", photos.data("chelsea.png"))]
    first = embed_images(backbone, images, views=2, seed=5)
    again = embed_images(backbone, images, views=2, seed=5)
    assert first.keys == ["a/x.png"] * 3 + ["a/y.png"] * 3 and first.views == [0, 1, 2, 0, 1, 2]
    assert np.array_equal(first.matrix(), again.matrix())
    assert not np.array_equal(first.matrix()[1], first.matrix()[0])
