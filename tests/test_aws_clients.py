"""Every AWS adapter's client waits a bounded time: botocore's defaults (60 s to connect, 60 s per read) would
hold a request or a worker's message past its function's timeout on one stalled endpoint."""

from __future__ import annotations

import pytest

from common.adapters import aws
from common.adapters.queue.sqs import SqsQueue
from common.adapters.storage.s3 import S3Storage
from common.adapters.store.dynamodb import DynamoDocuments


@pytest.fixture(autouse=True)
def _region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


def test_each_adapter_bounds_its_waits_and_retries() -> None:
    for client in (S3Storage("bucket").client, SqsQueue("http://127.0.0.1:1/q").client,
                   DynamoDocuments("table").client):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (aws.CONNECT_SECONDS, aws.READ_SECONDS)
        assert config.retries == {"total_max_attempts": aws.ATTEMPTS, "mode": "standard"}
        assert aws.READ_SECONDS > 20  # SQS's longest long poll answers within it
