"""Make an EfficientNet-Lite model's reference logits with the original PyTorch network. Run once, by hand.

    python3.11 -m venv /tmp/torch-ref
    /tmp/torch-ref/bin/pip install numpy torch --index-url https://download.pytorch.org/whl/cpu  # ~190 MB
    /tmp/torch-ref/bin/pip install --no-deps efficientnet_lite_pytorch==0.1.0
    python -m infra.make_reference --model efficientnet_lite2 --torch-python /tmp/torch-ref/bin/python

Never in CI and never in the project's venvs: it needs torch, which nothing else here uses. The project's
venv makes the crops (the serving pipeline in its exact mode, as for the Lite0 reference); the torch venv
runs this same file as a script on them: `efficientnet_lite_pytorch.EfficientNet` (the PyTorch port of the
original TF network the weights package was made for), with the package's `.pth` read by `torch.load`
rather than by infra/torch_weights.py, so the reference checks the weights reader as well as the Keras
port. The output (`tests/data/<model>_reference.npz`) holds the photos' names, their uint8 crops and the
crops' SHA-256, and the logits; the build checks its Keras port against them.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DATA = Path(__file__).parent.parent / "tests" / "data"


def forward(name: str, weights: str, crops_path: str, out_path: str) -> None:
    """In the torch venv: the original network's logits for uint8 NHWC crops, `(x - 127) / 128` as trained."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(name.replace("_", "-"))
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    model.eval()
    crops = np.load(crops_path)
    pixels = torch.from_numpy((crops.astype(np.float32) - 127.0) / 128.0).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        np.save(out_path, model(pixels).numpy().astype(np.float32))
    print(f"torch {torch.__version__}: {name} logits {tuple(crops.shape)} -> {out_path}", file=sys.stderr)


def make(name: str, torch_python: str) -> Path:
    """In the project's venv: crop the shipped photos, run `forward` in the torch venv, write the npz."""
    from infra import photos
    from infra.keras_models import SPECS
    from infra.torch_weights import efficientnet_lite_path

    spec = SPECS[name]
    crops = np.stack([photos.crop(p, spec.input_size, spec.resize_to) for p in photos.PHOTOS])
    with tempfile.TemporaryDirectory() as tmp:
        crops_path, out_path = Path(tmp) / "crops.npy", Path(tmp) / "logits.npy"
        np.save(crops_path, crops)
        subprocess.run([torch_python, "-I", __file__, "--forward", name, str(efficientnet_lite_path(name)),
                        str(crops_path), str(out_path)], check=True, timeout=600)
        logits = np.load(out_path)
    target = DATA / f"{name}_reference.npz"
    np.savez_compressed(target, photos=np.array(photos.PHOTOS), crops=crops, logits=logits,
                        crop_sha256=np.array([hashlib.sha256(c.tobytes()).hexdigest() for c in crops]))
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet_lite2")
    parser.add_argument("--torch-python", help="the python of a venv with torch and efficientnet_lite_pytorch")
    parser.add_argument("--forward", nargs=4, metavar=("MODEL", "WEIGHTS", "CROPS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.forward:
        forward(*args.forward)
    elif not args.torch_python:
        parser.error("--torch-python is required (see the module docstring)")
    else:
        print(make(args.model, args.torch_python))


if __name__ == "__main__":
    main()
