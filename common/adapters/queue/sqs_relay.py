"""Relay an SQS queue to a CloudEvent function: the SQS half of the queue port.

    python -m common.adapters.queue.sqs_relay --queue-url URL --target http://127.0.0.1:8080/_worker

Long-polls the queue, POSTs each message body to the target as a binary-mode
CloudEvent, deletes the message on a 2xx answer and otherwise leaves it: SQS
makes it visible again after the visibility timeout, and after the queue's
redrive policy's maxReceiveCount it moves to the dead-letter queue. S3 event
notifications sent to a queue are relayed the same way (to `on_upload`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from typing import Any

from common.adapters import aws
from common.adapters.eventpost import post_event

log = logging.getLogger("imageclassify.sqs_relay")


def relay_once(client: Any, queue_url: str, target: str, wait: int = 1, event_type: str = "") -> int:
    """Receive one batch and deliver it; how many messages were delivered."""
    reply = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                   AttributeNames=["ApproximateReceiveCount"])
    delivered = 0
    for message in reply.get("Messages", []):
        body = message["Body"].encode()
        try:
            status = post_event(target, body, event_type or "com.amazonaws.sqs.message", source=queue_url)
        except Exception as exc:  # noqa: BLE001 - leave it on the queue for redelivery
            log.warning("delivery failed: %s", exc)
            continue
        if 200 <= status < 300:
            client.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            delivered += 1
        else:
            log.warning("target answered %s; the message stays for redelivery", status)
    return delivered


def run(queue_url: str, target: str, stop: threading.Event, wait: int = 10, event_type: str = "",
        client: Any = None) -> None:
    client = client or aws.client("sqs")
    while not stop.is_set():
        try:
            relay_once(client, queue_url, target, wait, event_type)
        except Exception as exc:  # noqa: BLE001 - a relay keeps running through transient errors
            log.warning("receive failed: %s", exc)
            stop.wait(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--target", required=True, help="the CloudEvent function's URL")
    parser.add_argument("--wait", type=int, default=10, help="long-poll seconds")
    args = parser.parse_args()
    from common.core.logs import configure

    configure()
    with contextlib.suppress(KeyboardInterrupt):
        run(args.queue_url, args.target, threading.Event(), args.wait)


if __name__ == "__main__":
    main()
