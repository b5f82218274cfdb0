"""Training never learns worse than from its images alone: the views variant is chosen on validation.

The data set is made here: arrows pointing left and right, so that mirroring a
view changes its class. The real backbone embeds them once; the run must not
choose the mirrored views, and its test accuracy must be at least that of a run
without views.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from common.training import pipeline
from common.training.dataset import list_dataset
from common.training.variants import subsets

PREFIX = "users/ann/arrows/"


@pytest.fixture
def backbone(lite0):
    from common.models.backbone import get_backbone

    return get_backbone()


def arrow(rng: np.random.Generator, right: bool, size: int = 224) -> bytes:
    """A PNG of a bold arrow on a plain background, pointing right or left, of random size, place, tilt and
    colours (mirroring one gives an arrow of the other class; zooming or tilting it, one of its own)."""
    background = tuple(int(v) for v in rng.integers(150, 256, 3))
    ink = tuple(int(v) for v in rng.integers(0, 100, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    scale = rng.uniform(0.6, 1.1)
    length, thick, head = (int(scale * v) for v in (rng.integers(90, 130), rng.integers(16, 26), rng.integers(36, 50)))
    x0 = int(rng.integers(head // 2 + 4, size - length - head // 2 - 4))
    y = int(rng.integers(head + 10, size - head - 10))
    x1 = x0 + length
    draw.rectangle((x0, y - thick // 2, x1, y + thick // 2), fill=ink)
    tip, base = (x1 + head // 2, x1 - head // 2) if right else (x0 - head // 2, x0 + head // 2)
    draw.polygon([(tip, y), (base, y - head), (base, y + head)], fill=ink)
    image = image.rotate(float(rng.uniform(-5, 5)), Image.Resampling.BILINEAR, fillcolor=background)
    noise = rng.normal(0, 6, (size, size, 3))
    pixels = np.clip(np.asarray(image, np.float64) + noise, 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def arrows(per_class: int = 150, seed: int = 6) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {f"{PREFIX}{side}/{i:03d}.png": arrow(rng, side == "right")
            for side in ("left", "right") for i in range(per_class)}


def test_variants_are_subsets_and_duplicates_are_not_fitted_twice() -> None:
    views = np.array([0, 1, 2, 0, 1, 2])
    rows = subsets(views)
    assert list(rows) == ["none", "no_flips", "all"]
    assert rows["none"].tolist() == [True, False, False] * 2 and rows["no_flips"].tolist() == [True, True, False] * 2
    assert list(subsets(np.array([0, 1, 0, 1]))) == ["none", "no_flips"]  # one view: never mirrored
    assert list(subsets(np.zeros(4, np.int64))) == ["none"]


@pytest.mark.slow  # embeds about 800 images and views
def test_mirrored_views_of_arrows_are_not_chosen(backbone) -> None:
    files = arrows()
    dataset = list_dataset(files, PREFIX)
    _, where = pipeline.split_of_keys(dataset)
    embedded = pipeline.embed_images(backbone, ((key, files[key]) for key, _ in dataset.items()),
                                     lambda key: 2 if where[key] == "train" else 0)
    rows, views = pipeline.by_split(embedded, dict(dataset.items()), where), pipeline.train_views(embedded, where)
    _, augmented = pipeline.train(rows, dataset.labels, views=views)
    alone = {**rows, "train": (rows["train"][0][views == 0], rows["train"][1][views == 0])}
    _, plain = pipeline.train(alone, dataset.labels)  # the images alone, as with `augment: 0`
    choice = augmented["views"]
    assert set(choice["variants"]) == {"none", "no_flips", "all"}, choice
    assert choice["chosen"] != "all", choice
    losses = {name: v["validation_loss"] for name, v in choice["variants"].items()}
    assert losses[choice["chosen"]] == min(losses.values()) < losses["all"]
    assert augmented["accuracy"] >= plain["accuracy"], (augmented["accuracy"], plain["accuracy"])
    assert plain["views"] == {"chosen": "none", "variants": {"none": plain["views"]["variants"]["none"]}}
