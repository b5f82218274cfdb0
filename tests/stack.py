"""The local stack for tests: infra.stack_process.LocalStack with fast bcrypt and generous abuse limits."""

from __future__ import annotations

from pathlib import Path

from infra import stack_process
from tests.conftest import GENEROUS_LIMITS

BACKEND_VARIABLES = stack_process.BACKEND_VARIABLES


class LocalStack(stack_process.LocalStack):
    def __init__(self, data_dir: Path, models_dir: Path, port: int | None = None, **env: str) -> None:
        super().__init__(data_dir, models_dir, port, **{"BCRYPT_ROUNDS": "4", **GENEROUS_LIMITS, **env})
