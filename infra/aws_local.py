"""The local stack on AWS services: `nox -s serve -- --aws` (infra/localstack.py).

One moto_server stands in for DynamoDB, S3 and SQS, set up as infra/terraform-aws
deploys them: the store's one table (the adapter's create_table()), the images
bucket with its `inbox/` ObjectCreated notifications to the `uploads` queue, and
`sort-images` and `uploads` with redrive to their dead-letter queues after 10
receives. Where Lambda's event source mappings would invoke the queue targets,
SQS relays (common/adapters/queue/sqs_relay.py) POST each message to the stack's
internal routes, so the same port and routes as the local stack serve it all.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from infra import processes

TABLE, BUCKET, MAX_RECEIVES = "imageclassify", "imageclassify-local", 10
# queue -> (its dead-letter queue, the stack route its messages go to)
QUEUES = {"sort-images": ("sort-images-dead-letter", "_worker"), "uploads": ("uploads-dead-letter", "_upload")}
DEAD_LETTER_ROUTES = {"sort-images-dead-letter": "_dead_letter"}


def start(watch_prefix: str = "inbox/") -> tuple[processes.Server, dict[str, str]]:
    """moto_server with the table, bucket and queues made; the environment is set for the stack to use them."""
    import boto3

    from common.adapters.store.dynamodb import create_table

    moto = processes.moto()
    os.environ.update(AWS_ENDPOINT_URL=moto.url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    create_table(boto3.client("dynamodb"), TABLE)
    sqs, s3 = boto3.client("sqs"), boto3.client("s3")
    urls: dict[str, str] = {}
    for queue, (dead_letter, _) in QUEUES.items():
        urls[dead_letter] = sqs.create_queue(QueueName=dead_letter)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=urls[dead_letter], AttributeNames=["QueueArn"])["Attributes"]
        redrive = {"deadLetterTargetArn": arn["QueueArn"], "maxReceiveCount": str(MAX_RECEIVES)}
        urls[queue] = sqs.create_queue(QueueName=queue, Attributes={"RedrivePolicy": json.dumps(redrive),
                                                                    "VisibilityTimeout": "60"})["QueueUrl"]
    s3.create_bucket(Bucket=BUCKET)
    uploads = sqs.get_queue_attributes(QueueUrl=urls["uploads"], AttributeNames=["QueueArn"])["Attributes"]
    s3.put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": uploads["QueueArn"], "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": watch_prefix}]}}}]})
    os.environ.update(STORE_BACKEND="dynamodb", DYNAMODB_TABLE=TABLE, STORAGE_BACKEND="s3", BUCKET=BUCKET,
                      QUEUE_BACKEND="sqs", SQS_QUEUE_URL=urls["sort-images"])
    return moto, urls


def relay(port: int, urls: dict[str, str], token: str, stop: threading.Event) -> None:
    """One SQS relay per consumed queue, to the stack's internal route (the token proves it is the stack's own)."""
    from common.adapters.queue.sqs_relay import run

    routes: dict[str, str] = {q: route for q, (_, route) in QUEUES.items()} | DEAD_LETTER_ROUTES
    for queue, route in routes.items():
        target = f"http://127.0.0.1:{port}/{route}?token={token}"
        threading.Thread(target=run, args=(urls[queue], target, stop, 1), name=f"relay-{queue}", daemon=True).start()


def where(moto: Any) -> str:
    """The banner's lines: what serves the store, the bucket and the queues."""
    return (f"moto_server {moto.url}: DynamoDB table {TABLE}, S3 bucket s3://{BUCKET}/ (uploads under inbox/ "
            f"are labelled), SQS queues {', '.join(QUEUES)} (with dead-letter queues)\n"
            f"  (AWS_ENDPOINT_URL={moto.url} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test for the aws CLI)")
