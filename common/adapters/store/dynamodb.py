"""The DynamoDB store adapter: every document one item of one table, transactions optimistic like Firestore's.

An attempt reads with consistent `GetItem`s and notes each item's version (a
random id rewritten on every write, so a rewrite can never look unchanged);
its writes go in one `TransactWriteItems`, each conditioned on the version
read (or on the item still being absent), with a `ConditionCheck` for what
was read and not written. A lost race cancels the transaction and the attempt
runs again, with jittered exponential backoff, as on throttling; contention
that does not clear is a 503 with `Retry-After`. The commit carries a
`ClientRequestToken`: a commit whose reply was lost is sent again as is, never
re-run (a re-run would apply a charge twice).

Item: `pk` = kind#key, `doc` = the document as JSON (numbers come back int or
float exactly as written), `v` = the version. `find` queries one global
secondary index per queried field (`INDEXED`, only on the kinds queried, so
a hot document pays no index write it does not need); `find_below` queries a
sparse index of the documents with a numeric `expires`, spread over `SHARDS`
partitions so the spends written per request share no hot index partition.
The kinds given as `ttl_kinds` also carry `ttl`, the table's TTL attribute:
garbage collection only, since those are read as absent once expired. Spends
and space writes are not among them: their expiry is work (a refund, a usage
correction) the sweeper must do, not a deletion.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from common.adapters import aws
from common.core import errors
from common.records.port import Doc

T = TypeVar("T")
# field -> the kinds whose documents are found by it (common/store: api keys by username, job images by job,
# jobs and models by status, models by owner, reservations and leases by holder; spends and jobs by owner for an
# account's deletion; spends by account and day for its usage history)
INDEXED = {"username": ("api_keys", "spends"), "job_id": ("job_images", "job_shards"), "status": ("jobs", "models"),
           "owner": ("models", "usage_shards", "jobs", "webhook_deliveries"), "holder": ("spends", "leases"),
           "usage_day": ("spends",)}
EXPIRY_INDEX, SHARDS = "by_expires", 8
MAX_ACTIONS = 100  # TransactWriteItems' limit (items read and written, each once)
DEADLINE = 30.0  # seconds of retries before a 503
RETRY_REASONS = {"ConditionalCheckFailed", "TransactionConflict", "ThrottlingError",
                 "ProvisionedThroughputExceeded", "RequestLimitExceeded", "None"}
THROTTLED = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
             "TransactionConflictException", "ConditionalCheckFailedException"}
# the commit may have happened, or is still under way: send the same request again
AMBIGUOUS = {"InternalServerError", "ServiceUnavailable", "TransactionInProgressException"}


class Retry(Exception):
    """This attempt lost a race or was throttled: run it again."""


def _pk(kind: str, key: str) -> dict[str, str]:
    return {"S": f"{kind}#{key}"}


def _number(value: Any) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return repr(value) if ok else None


def _item(kind: str, key: str, doc: Doc, version: str, ttl_kinds: frozenset[str]) -> dict[str, Any]:
    item: dict[str, Any] = {"pk": _pk(kind, key), "key": {"S": key}, "v": {"S": version},
                            "doc": {"S": json.dumps(doc, separators=(",", ":"))}}
    for field, kinds in INDEXED.items():
        if kind in kinds and field in doc:
            item[f"ix_{field}"] = {"S": _indexed(kind, doc[field])}
    expires = _number(doc.get("expires"))
    if expires is not None:
        shard = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % SHARDS
        item["x_kind"], item["x_at"] = {"S": f"{kind}#{shard}"}, {"N": expires}
        if kind in ttl_kinds:
            item["ttl"] = {"N": str(math.ceil(float(expires)))}
    return item


def _indexed(kind: str, value: Any) -> str:
    return f"{kind}#{json.dumps(value, sort_keys=True)}"


def _found(item: dict[str, Any]) -> tuple[str, Doc]:
    return item["key"]["S"], json.loads(item["doc"]["S"])


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class _Tx:
    """Reads go to DynamoDB (and see this attempt's own writes); writes are buffered, one per document, and
    committed in one `TransactWriteItems` guarded by the version of everything read."""

    def __init__(self, docs: DynamoDocuments) -> None:
        self.docs = docs
        self.read: dict[tuple[str, str], tuple[str | None, Doc | None]] = {}  # version (None: absent), body
        self.pending: dict[tuple[str, str], Doc | None] = {}  # None: delete

    def get(self, kind: str, key: str) -> Doc | None:
        if (kind, key) in self.pending:
            doc = self.pending[(kind, key)]
            return dict(doc) if doc is not None else None
        if (kind, key) not in self.read:
            item = self.docs.client.get_item(TableName=self.docs.table, Key={"pk": _pk(kind, key)},
                                             ConsistentRead=True).get("Item")
            self.read[(kind, key)] = (item["v"]["S"], _found(item)[1]) if item else (None, None)
        doc = self.read[(kind, key)][1]
        return dict(doc) if doc is not None else None

    def put(self, kind: str, key: str, doc: Doc) -> None:
        self.pending[(kind, key)] = dict(doc)

    def delete(self, kind: str, key: str) -> None:
        self.pending[(kind, key)] = None

    def _guard(self, kind: str, key: str) -> dict[str, Any]:
        """The condition that what was read is what is stored now (nothing when it was not read)."""
        if (kind, key) not in self.read:
            return {}
        version = self.read[(kind, key)][0]
        if version is None:
            return {"ConditionExpression": "attribute_not_exists(pk)"}
        return {"ConditionExpression": "v = :v", "ExpressionAttributeValues": {":v": {"S": version}}}

    def actions(self) -> list[dict[str, Any]]:
        table, ttl_kinds = self.docs.table, self.docs.ttl_kinds
        found: list[dict[str, Any]] = []
        for (kind, key), doc in self.pending.items():
            guard = self._guard(kind, key)
            if doc is None:
                found.append({"Delete": {"TableName": table, "Key": {"pk": _pk(kind, key)}, **guard}})
            else:
                item = _item(kind, key, doc, uuid.uuid4().hex, ttl_kinds)
                found.append({"Put": {"TableName": table, "Item": item, **guard}})
        for kind, key in self.read.keys() - self.pending.keys():
            found.append({"ConditionCheck": {"TableName": table, "Key": {"pk": _pk(kind, key)},
                                             **self._guard(kind, key)}})
        return found


class DynamoDocuments:
    def __init__(self, table: str, ttl_kinds: Iterable[str] = (), client: Any = None) -> None:
        if client is None:
            client = aws.client("dynamodb")
        self.client, self.table, self.ttl_kinds = client, table, frozenset(ttl_kinds)

    def _commit(self, tx: _Tx, deadline: float) -> None:
        if not tx.pending:
            return  # read-only: nothing to guard (as on Firestore)
        actions = tx.actions()
        if len(actions) > MAX_ACTIONS:
            raise RuntimeError(f"a transaction of {len(actions)} documents exceeds DynamoDB's {MAX_ACTIONS}")
        token = uuid.uuid4().hex  # the same commit sent again within 10 minutes is applied once
        for delay in _backoff(deadline):
            try:
                self.client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
                return
            except Exception as exc:
                code = _code(exc)
                if code == "TransactionCanceledException":
                    reasons = {r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])}  # type: ignore[attr-defined]
                    if reasons <= RETRY_REASONS:
                        raise Retry from exc
                    raise
                if code in THROTTLED:
                    raise Retry from exc
                if code not in AMBIGUOUS and not _connection_error(exc):
                    raise
            time.sleep(delay)
        raise errors.Unavailable("The account database is busy. Retry in a moment.")

    def transact(self, work: Callable[[_Tx], T]) -> T:
        deadline = time.monotonic() + DEADLINE
        for delay in _backoff(deadline):
            tx = _Tx(self)
            try:
                result = work(tx)
                self._commit(tx, deadline)
                return result
            except Retry:
                time.sleep(delay)
            except Exception as exc:
                if _code(exc) not in THROTTLED | AMBIGUOUS and not _connection_error(exc):
                    raise  # a throttled or failed read runs the attempt again; anything else is the caller's
                time.sleep(delay)
        raise errors.Unavailable("The account database is busy. Retry in a moment.")

    def get(self, kind: str, key: str) -> Doc | None:
        item = self.client.get_item(TableName=self.table, Key={"pk": _pk(kind, key)}, ConsistentRead=True).get("Item")
        return _found(item)[1] if item else None

    def _query(self, limit: int, **query: Any) -> list[tuple[str, Doc]]:
        found: list[tuple[str, Doc]] = []
        while len(found) < limit:
            page = self.client.query(TableName=self.table, Limit=limit - len(found), **query)
            found += [_found(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found[:limit]

    def find(self, kind: str, field: str, value: Any, limit: int = 1000) -> list[tuple[str, Doc]]:
        if kind not in INDEXED.get(field, ()):
            raise ValueError(f"{kind} documents are not indexed by {field!r}: add it to INDEXED and the table")
        return self._query(limit, IndexName=f"by_{field}", KeyConditionExpression="#f = :v",
                           ExpressionAttributeNames={"#f": f"ix_{field}"},
                           ExpressionAttributeValues={":v": {"S": _indexed(kind, value)}})

    def find_below(self, kind: str, field: str, bound: float, limit: int = 1000) -> list[tuple[str, Doc]]:
        if field != "expires":
            raise ValueError(f"only `expires` is indexed for ranges, not {field!r}")
        if bound == -math.inf:
            return []
        below = "" if bound == math.inf else " AND x_at < :b"
        found: list[tuple[str, Doc]] = []
        for shard in range(SHARDS):
            values: dict[str, Any] = {":k": {"S": f"{kind}#{shard}"}}
            if below:
                values[":b"] = {"N": repr(float(bound))}
            found += self._query(limit - len(found), IndexName=EXPIRY_INDEX,
                                 KeyConditionExpression="x_kind = :k" + below, ExpressionAttributeValues=values)
            if len(found) >= limit:
                break
        return found

    def find_prefix(self, kind: str, prefix: str, limit: int = 100) -> list[tuple[str, Doc]]:
        """A scan (the table has no range key to order by): admin pages only. Every match is read, then the
        first `limit` in key order kept."""
        found: list[tuple[str, Doc]] = []
        query: dict[str, Any] = {"FilterExpression": "begins_with(pk, :p)",
                                 "ExpressionAttributeValues": {":p": {"S": f"{kind}#{prefix}"}}}
        while True:
            page = self.client.scan(TableName=self.table, **query)
            found += [_found(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return sorted(found, key=lambda pair: pair[0])[:limit]
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def close(self) -> None:
        self.client.close()


def _backoff(deadline: float) -> Iterator[float]:
    """Jittered exponential delays (full jitter) until the deadline passes."""
    ceiling = 0.01
    while time.monotonic() < deadline:
        yield random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret
        ceiling = min(ceiling * 2, 0.5)


def _connection_error(exc: Exception) -> bool:
    from botocore.exceptions import ConnectionError as BotoConnectionError

    return isinstance(exc, BotoConnectionError)


def create_table(client: Any, table: str) -> None:
    """The table as the adapter uses it (on-demand billing, TTL on `ttl`); infra/terraform-aws mirrors it."""
    def index(name: str, hash_key: str, range_key: str | None = None) -> dict[str, Any]:
        schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
        schema += [{"AttributeName": range_key, "KeyType": "RANGE"}] if range_key else []
        return {"IndexName": name, "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}}

    attributes = [("pk", "S"), ("x_kind", "S"), ("x_at", "N"), *((f"ix_{f}", "S") for f in INDEXED)]
    client.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in attributes],
        GlobalSecondaryIndexes=[index(EXPIRY_INDEX, "x_kind", "x_at"),
                                *(index(f"by_{f}", f"ix_{f}") for f in INDEXED)])
    client.get_waiter("table_exists").wait(TableName=table)
    client.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
