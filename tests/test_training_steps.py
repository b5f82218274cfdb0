"""The training steps on their own, no model: metrics against sklearn, split, dataset rules, augmentation, fit."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import numpy as np
import pytest
from sklearn import metrics as sk

from common.core import errors
from common.http.envelope import body_of, status_of
from common.models.classnames import normalise_class
from common.training import augment as aug
from common.training.confusion_png import render
from common.training.dataset import list_dataset
from common.training.fit import class_weights, fit_softmax
from common.training.metrics import evaluate, roc_auc
from common.training.split import stratified_split

# -- class names -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hot dog", "hot_dog", "HOT-DOG", "  Hot  Dog ", "hot__-dog", "ｈｏｔ ｄｏｇ"])
def test_normalise_class_makes_spellings_one_class(name: str) -> None:
    assert normalise_class(name) == "hot dog"


def test_normalise_class_keeps_distinct_names_distinct() -> None:
    assert normalise_class("sunglasses") != normalise_class("sunglass lens")
    assert normalise_class("Straße") == normalise_class("STRASSE")  # case-folded, not just lower-cased


# -- metrics against sklearn -------------------------------------------------------------


def check_against_sklearn(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict:
    got = evaluate(y, probs, labels)
    pred = probs.argmax(axis=1)
    k = len(labels)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred), abs=1e-6)
    assert got["macro_f1"] == pytest.approx(sk.f1_score(y, pred, average="macro", zero_division=np.nan), abs=1e-6)
    assert got["confusion_matrix"]["matrix"] == sk.confusion_matrix(y, pred, labels=list(range(k))).tolist()
    assert got["confusion_matrix"]["labels"] == labels
    p, r, f, s = sk.precision_recall_fscore_support(y, pred, labels=list(range(k)), zero_division=np.nan)
    for c, label in enumerate(labels):
        row = got["per_class"][label]
        for mine, theirs in ((row["precision"], p[c]), (row["recall"], r[c]), (row["f1"], f[c])):
            assert (mine is None) if np.isnan(theirs) else mine == pytest.approx(theirs, abs=1e-6)
        assert row["support"] == s[c]
        positives = y == c
        if positives.any() and not positives.all():
            assert row["roc_auc"] == pytest.approx(sk.roc_auc_score(positives, probs[:, c]), abs=1e-6)
        else:
            assert row["roc_auc"] is None
    return got


def test_metrics_match_sklearn_with_a_never_predicted_and_an_absent_class() -> None:
    labels = ["cat", "dog", "fox", "owl"]  # fox never predicted, owl absent from the test split
    y = np.array([0, 0, 0, 1, 1, 2, 2, 0, 1, 2])
    probs = np.array([[.7, .2, .1, 0], [.5, .4, .1, 0], [.2, .6, .1, .1], [.1, .8, .1, 0], [.6, .3, .1, 0],
                      [.3, .3, .3, .1], [.1, .5, .2, .2], [.9, .05, .05, 0], [.2, .2, .1, .5], [.4, .2, .35, .05]])
    got = check_against_sklearn(y, probs, labels)
    assert got["per_class"]["fox"]["precision"] is None and got["per_class"]["fox"]["f1"] == 0
    owl = got["per_class"]["owl"]
    assert owl["support"] == 0 and owl["recall"] is None and owl["roc_auc"] is None and owl["precision"] == 0


@pytest.mark.parametrize("seed", range(6))
def test_metrics_match_sklearn_on_random_predictions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    y = rng.integers(0, k, size=int(rng.integers(5, 120)))
    probs = rng.dirichlet(np.ones(k), size=len(y))
    if seed % 2:  # ties in the scores: ROC AUC counts them half
        probs = np.round(probs, 1)
    check_against_sklearn(y, probs, [f"c{i}" for i in range(k)])


def test_roc_auc_edge_cases() -> None:
    assert roc_auc(np.array([True, False]), np.array([0.9, 0.1])) == 1.0
    assert roc_auc(np.array([True, False]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([True, True]), np.array([0.5, 0.4])) is None
    assert roc_auc(np.array([False, False]), np.array([0.5, 0.4])) is None


def test_metrics_on_an_empty_test_split() -> None:
    got = evaluate(np.empty(0, int), np.empty((0, 2)), ["a", "b"])
    assert got["accuracy"] is None and got["macro_f1"] is None and got["confusion_matrix"]["matrix"] == [[0, 0], [0, 0]]


# -- split -------------------------------------------------------------------------------


def test_split_is_stratified_complete_and_seeded() -> None:
    sizes = [5, 6, 9, 10, 37, 200]
    y = np.repeat(np.arange(len(sizes)), sizes)
    split = stratified_split(y, seed=7)
    parts = [split.train, split.validation, split.test]
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(y)))
    for c, n in enumerate(sizes):
        val, test = int((y[split.validation] == c).sum()), int((y[split.test] == c).sum())
        assert val >= 1 and test >= 1, (c, n)
        assert val == max(1, round(n / 10)) and test == max(1, round(n / 10))
        assert (y[split.train] == c).sum() == n - val - test
    again = stratified_split(y, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(parts, [again.train, again.validation, again.test], strict=True))
    other = stratified_split(y, seed=8)
    assert not np.array_equal(split.test, other.test)
    assert split.sizes() == {"train": 211, "validation": 28, "test": 28}


def test_split_keeps_a_tiny_class_for_training() -> None:
    split = stratified_split([0, 0, 0, 0, 1, 1, 1, 1, 1], seed=0)
    assert set(split.train.tolist()) >= {0, 1, 2, 3}


# -- dataset listing and its rules -------------------------------------------------------

P = "users/ann/pets/"


def keys(counts: dict[str, int], ext: str = "jpg") -> list[str]:
    return [f"{P}{label}/{i}.{ext}" for label, n in counts.items() for i in range(n)]


def refusal(listing: Iterable[str]) -> errors.BadRequest:
    with pytest.raises(errors.BadRequest) as refused:
        list_dataset(listing, P)
    return refused.value


def test_dataset_groups_folders_and_skips_non_images() -> None:
    listing = keys({"cat": 5, "dog": 6}) + [f"{P}dog/deep/er/x.PNG", f"{P}dog/notes.txt", f"{P}cat/.hidden.jpg",
                                             f"{P}readme.jpg", f"{P}.trash/a.jpg", f"{P}cat/noext",
                                             "users/bob/pets/cat/1.jpg"]
    ds = list_dataset(listing, P)
    assert ds.labels == ["cat", "dog"] and [len(k) for k in ds.keys] == [5, 7] and ds.images == 12
    assert f"{P}dog/deep/er/x.PNG" in ds.keys[1]
    assert set(ds.skipped) == {f"{P}dog/notes.txt", f"{P}cat/.hidden.jpg", f"{P}readme.jpg", f"{P}.trash/a.jpg",
                               f"{P}cat/noext"}


def test_dataset_stops_reading_a_huge_listing_early() -> None:
    def endless() -> Iterator[str]:
        i = 0
        while True:
            yield f"{P}c{i % 3}/{i}.jpg"
            i += 1

    assert refusal(endless()).code == "too_many_images"


def test_dataset_at_the_image_limit_is_accepted() -> None:
    assert list_dataset(keys({"cat": 10_000, "dog": 10_000}), P).images == 20_000


def test_dataset_merges_spellings_of_one_class() -> None:
    ds = list_dataset(keys({"hot dog": 2, "hot_dog": 2, "HOT-DOG": 1, "taco": 5}), P)
    assert ds.labels == ["HOT-DOG", "taco"] and [len(k) for k in ds.keys] == [5, 5]


@pytest.mark.parametrize("listing, code, words", [
    ([], "empty_dataset", ["no images"]),
    ([f"{P}cat/a.txt", f"{P}dog/b.pdf"], "empty_dataset", ["no images"]),
    (keys({"cat": 9}), "too_few_classes", ["at least 2", "found 1"]),
    (keys({"cat": 5, "dog": 4, "emu": 1}), "class_too_small", ["dog (4)", "emu (1)", "at least 5"]),
    (keys({f"c{i}": 5 for i in range(201)}), "too_many_classes", ["at most 200", "201"]),
    (keys({"cat": 10_000, "dog": 10_001}), "too_many_images", ["more than 20,000"]),
    (keys({"cat\x07": 5, "dog": 5}), "bad_class_name", ["printable"]),
    (keys({"x" * 101: 5, "dog": 5}), "bad_class_name", ["100"]),
    (keys({"_-_": 5, "dog": 5}), "bad_class_name", ["Rename"]),
])
def test_dataset_refusals_say_what_to_do(listing: list[str], code: str, words: list[str]) -> None:
    err = refusal(listing)
    assert status_of(err) == 400 and err.code == code
    for word in words:
        assert word in err.message
    if code == "class_too_small":
        assert body_of(err)["error"]["classes"] == ["dog", "emu"] and "cat" not in err.message


# -- augmentation ------------------------------------------------------------------------


def crop(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (224, 224, 3), dtype=np.uint8)


def test_augment_shapes_and_determinism() -> None:
    image = crop()
    views = aug.augment(image, 3, seed=11)
    assert len(views) == 3 and all(v.shape == (224, 224, 3) and v.dtype == np.uint8 for v in views)
    assert all(np.array_equal(a, b) for a, b in zip(views, aug.augment(image, 3, seed=11), strict=True))
    assert not np.array_equal(views[0], aug.augment(image, 1, seed=12)[0])
    assert not any(np.array_equal(v, image) for v in views)
    assert aug.augment(image, 0) == []
    assert aug.image_seed(3, "a/b.jpg") == aug.image_seed(3, "a/b.jpg") != aug.image_seed(3, "a/c.jpg")
    with pytest.raises(ValueError):
        aug.augment(image[..., 0])


def test_augment_mirrors_every_second_view() -> None:
    """Views 2, 4, ... are mirrored and no other: a run can leave them out without embedding again."""
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, :20] = 255  # bright on the left
    views = aug.augment(image, 8, seed=1)
    for number, view in enumerate(views, start=1):
        left, right = view[:, :32].mean(), view[:, 32:].mean()
        assert (left <= right) if number % 2 == 0 else (left >= right)
    assert sum(v[:, :32].mean() > v[:, 32:].mean() for v in views[::2]) >= 3  # the unmirrored keep the bright left
    assert aug.flipped(np.arange(5)).tolist() == [False, False, True, False, True]


@pytest.mark.parametrize("value", [-1, 9, "2", 2.5, True, [2]])
def test_augment_field_is_checked(value: object) -> None:
    with pytest.raises(errors.BadRequest) as bad:
        aug.check_views(value)
    assert bad.value.code == "bad_augment" and "0 to 8" in bad.value.message


def test_augment_field_default() -> None:
    assert aug.check_views(None) == 2 and aug.check_views(0) == 0 and aug.check_views(8) == 8


# -- fit ---------------------------------------------------------------------------------


def blobs(counts: list[int], dim: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (len(counts), dim))
    x = np.concatenate([rng.normal(c, 1.0, (n, dim)) for c, n in zip(centres, counts, strict=True)]).astype(np.float32)
    return x * 40 + 3, np.repeat(np.arange(len(counts)), counts)  # unscaled features: standardisation matters


def test_fit_is_deterministic_and_folds_the_standardisation() -> None:
    x, y = blobs([60, 60, 60])
    s = stratified_split(y, 0)
    a = fit_softmax(x[s.train], y[s.train], x[s.validation], y[s.validation], 3)
    b = fit_softmax(x[s.train], y[s.train], x[s.validation], y[s.validation], 3)
    assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
    assert a.weights.shape == (16, 3) and a.weights.dtype == np.float32
    accuracy = ((x[s.test] @ a.weights + a.bias).argmax(1) == y[s.test]).mean()
    assert accuracy >= 0.9
    assert a.l2 in [g["l2"] for g in a.grid] and len(a.grid) == 7


def test_class_weights_rescue_a_small_class() -> None:
    assert class_weights(np.array([0, 0, 0, 1]), 3).tolist() == [2 / 3, 2.0, 0.0]
    x, y = blobs([400, 12], dim=8, seed=3)
    s = stratified_split(y, 0)
    fitted = fit_softmax(x[s.train], y[s.train], x[s.validation], y[s.validation], 2)
    x_new, y_new = blobs([400, 400], dim=8, seed=3)  # same centres, fresh draws
    recall_small = ((x_new[y_new == 1] @ fitted.weights + fitted.bias).argmax(1) == 1).mean()
    assert recall_small >= 0.8


def test_fit_is_bounded_in_time() -> None:
    x, y = blobs([300, 300, 300], dim=64)
    fitted = fit_softmax(x, y, x[:30], y[:30], 3, max_seconds=0.05)
    assert fitted.seconds < 2.0


def test_fit_without_a_validation_split() -> None:
    x, y = blobs([20, 20])
    fitted = fit_softmax(x, y, x[:0], y[:0], 2)
    assert len(fitted.grid) == 1 and ((x @ fitted.weights + fitted.bias).argmax(1) == y).mean() >= 0.9


# -- the confusion matrix picture --------------------------------------------------------


@pytest.mark.parametrize("k", [2, 10, 200])
def test_confusion_png_opens_at_a_sane_size(k: int) -> None:
    from PIL import Image

    rng = np.random.default_rng(k)
    matrix = rng.integers(0, 30, (k, k)) + np.eye(k, dtype=int) * 100
    labels = [f"class number {i} with a rather long folder name" for i in range(k)]
    png = render(labels, matrix)
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGB"
    assert 300 <= image.width <= 2400 and 100 <= image.height <= 2400, image.size
    # the diagonal is darker than the off-diagonal cells
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.min() < 100


def test_confusion_png_refuses_a_wrong_shape() -> None:
    with pytest.raises(ValueError):
        render(["a", "b"], [[1, 2, 3]])
