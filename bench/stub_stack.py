"""The local stack with the stub model (bench/stub_model.py): what a sort job's path costs besides the model.

    python -m bench.stub_stack --port P --data-dir D     (as `python -m infra.localstack`)

The jobs section runs a job through it to measure the whole path per image that the real stack runs around the
model: the queue's lease and delete, its HTTP push, the worker's checks, commits and output copy. The stub is
served as the default model once the stack has read its settings (in `build_apps`), so every function finds it.
"""

from __future__ import annotations

import os
from typing import Any

from bench import stub_model
from infra import localstack

_build_apps = localstack.build_apps


def build_apps() -> Any:
    stub_model.install(float(os.environ.get("STUB_MODEL_SECONDS", "0")))
    return _build_apps()


if __name__ == "__main__":
    localstack.build_apps = build_apps
    localstack.main()
