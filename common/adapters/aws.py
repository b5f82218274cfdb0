"""One way to make an AWS client: bounded waits and botocore's standard retry mode.

botocore's defaults wait 60 s to connect and 60 s for each read, so one stalled endpoint would hold a request,
or a worker's message, past its function's timeout; a request must fail in time to be retried. The read bound
stays above SQS's longest long poll (20 s).
"""

from __future__ import annotations

from typing import Any

CONNECT_SECONDS, READ_SECONDS, ATTEMPTS = 5, 30, 3


def client(service: str) -> Any:
    import boto3  # here, not at the top: only an AWS deployment pays its import
    from botocore.config import Config

    return boto3.client(service, config=Config(connect_timeout=CONNECT_SECONDS, read_timeout=READ_SECONDS,
                                               retries={"total_max_attempts": ATTEMPTS, "mode": "standard"}))
