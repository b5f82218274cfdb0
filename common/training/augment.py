"""Extra views of training images: random resized crops, small rotations, and every second view mirrored.

A small training set teaches a head more when each image is also seen slightly
moved, zoomed and mirrored, which is what photos of the same class vary by. Each
view is made from the HxWx3 uint8 crop the backbone takes and has the same
shape. Views are seeded per image (`image_seed`), so the same image gets the
same views whichever instance embeds it and in whatever order. Only training
images are augmented; validation and test images are scored as they are.

Whether a view is mirrored follows from its number alone (`flipped`: views 2, 4,
...), not from a coin: a run can then drop the mirrored views without embedding
again, for classes that mirroring changes (an arrow to the left is not one to the
right; `common.training.variants` chooses on the validation split).
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image

from common.core import errors
from common.training.bodies import DEFAULT_VIEWS, MAX_VIEWS  # the body's bounds, declared once

SCALE = (0.6, 1.0)  # fraction of the crop's area a view keeps
RATIO = (3 / 4, 4 / 3)  # aspect ratio range of the kept part
MAX_DEGREES = 12.0


def check_views(augment: object) -> int:
    """The `augment` request field: how many extra views per training image (0 to 8, default 2)."""
    if augment is None:
        return DEFAULT_VIEWS
    if isinstance(augment, bool) or not isinstance(augment, int) or not 0 <= augment <= MAX_VIEWS:
        raise errors.BadRequest(f"augment must be a whole number from 0 to {MAX_VIEWS} (extra views per "
                                f"training image); got {augment!r}.", code="bad_augment")
    return augment


def image_seed(seed: int, key: str) -> int:
    """A per-image seed from the run's seed and the image's key (stable across processes, unlike hash())."""
    return (seed * 1_000_003 + zlib.crc32(key.encode("utf-8", "surrogatepass"))) & 0xFFFFFFFF


def augment(crop: np.ndarray, views: int = DEFAULT_VIEWS, seed: int = 0) -> list[np.ndarray]:
    """`views` new HxWx3 uint8 images made from `crop` (the crop itself is not included)."""
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 crop, got {crop.shape} {crop.dtype}")
    rng = np.random.default_rng(seed)
    image = Image.fromarray(crop, "RGB")
    return [_view(image, rng, bool(flipped(np.array(number)))) for number in range(1, views + 1)]


def flipped(views: np.ndarray) -> np.ndarray:
    """Which of the view numbers (0 = the image itself, 1.. = its views) are mirrored."""
    return (views > 0) & (views % 2 == 0)


def _view(image: Image.Image, rng: np.random.Generator, flip: bool) -> np.ndarray:
    w, h = image.size
    fill = tuple(int(v) for v in np.asarray(image).reshape(-1, 3).mean(axis=0))
    angle = float(rng.uniform(-MAX_DEGREES, MAX_DEGREES))
    # the corners a rotation uncovers take the image's mean colour, not black (a stark edge the head could learn)
    view = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=fill)
    area = w * h * rng.uniform(*SCALE)
    ratio = float(np.exp(rng.uniform(np.log(RATIO[0]), np.log(RATIO[1]))))
    cw = int(round(min(w, np.sqrt(area * ratio))))
    ch = int(round(min(h, np.sqrt(area / ratio))))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    view = view.resize((w, h), Image.Resampling.BICUBIC, box=(left, top, left + cw, top + ch))
    if flip:
        view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return np.asarray(view, dtype=np.uint8)
