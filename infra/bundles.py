"""Build one deployable bundle per function target: `nox -s bundles` (or `python -m infra.bundles`).

    build/<target>/main.py            the function (with the rest of its folder, e.g. the web console's static/)
    build/<target>/common/            a copy of the shared package
    build/<target>/requirements.txt   the function's own pins
    build/<target>/models/            the shared backbone (.tflite), the ImageNet head and labels (model targets)
    build/<target>.zip                the same, zipped
    build/lambda/<target>.zip         the Lambda zip (infra/lambda_bundles.py), its size and cold start reported

This is exactly the source a Cloud Run function (gen2) deployment receives. The
model-serving bundles read their model from `models/` (MODELS_DIR=models).
"""

from __future__ import annotations

import argparse
import shutil
import zipfile
from pathlib import Path

from common.models import layout as model_layout
from infra.targets import REPO, TARGETS


def build(target: str, out: Path, models_dir: Path, model: str = "efficientnet_lite0") -> Path:
    folder = TARGETS[target].source.parent
    dest = out / target
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "common"))
    shutil.copytree(REPO / "common", dest / "common", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if TARGETS[target].model:
        (dest / "models").mkdir()
        for model_file in model_layout.split(models_dir, model):
            if not model_file.exists():
                raise SystemExit(f"{model_file} is missing: build the model first (nox -s model).")
            shutil.copy2(model_file, dest / "models" / model_file.name)
    archive = out / f"{target}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(dest.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(dest))
    return dest


def main() -> None:
    from common.core.config import settings

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "build")
    parser.add_argument("--no-lambda", action="store_true", help="skip the Lambda zips (build/lambda/)")
    parser.add_argument("targets", nargs="*", default=sorted(TARGETS))
    args = parser.parse_args()
    for target in args.targets:
        dest = build(target, args.out, settings().models.models_dir)
        size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
        print(f"{target:12s} {dest}  ({size / 1e6:.1f} MB source)")
        if not args.no_lambda:
            lambda_report(target, dest, args.out)


def lambda_report(target: str, bundle: Path, out: Path) -> None:
    import tempfile

    from infra import lambda_bundles

    dest = lambda_bundles.build(target, bundle, out)
    zipped, unzipped = lambda_bundles.sizes(target, out)
    with tempfile.TemporaryDirectory() as data_dir:
        seconds, _ = lambda_bundles.cold_start(target, dest, Path(data_dir))
    fits = "fits" if unzipped < lambda_bundles.LIMIT_MB else "OVER the limit: needs a container image"
    if newer := lambda_bundles.newer_glibc(dest):
        fits += f"; {', '.join(newer)} need a newer glibc than {lambda_bundles.RUNTIME}'s: a container image"
    print(f"{target:12s} lambda zip {zipped:.1f} MB, unzipped {unzipped:.1f} MB of {lambda_bundles.LIMIT_MB} "
          f"({fits}), cold start {seconds:.2f} s")


if __name__ == "__main__":
    main()
