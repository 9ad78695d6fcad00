"""The state store on Amazon DynamoDB (`--state-store dynamodb:TABLE`): one item per cluster,
for runs that have no disk of their own (a scheduled Lambda function).

The table needs only a String partition key named `cluster_key`, e.g.
    aws dynamodb create-table --table-name mutguard-state --billing-mode PAY_PER_REQUEST \\
      --attribute-definitions AttributeName=cluster_key,AttributeType=S \\
      --key-schema AttributeName=cluster_key,KeyType=HASH
Each item holds `cluster_key`, `saved_at` (ISO 8601, UTC) and `state`: ClusterState.to_dict()
as a map, readable in the console, the cluster's MUT history (its `history` list) included, so
a save writes it in the same PutRequest; an item written before the history was kept has no
`history` and loads with none. An item may not exceed 400 KB, so a state whose JSON is over
INLINE_LIMIT bytes (a cluster with thousands of findings) is kept gzip-compressed in the Binary
attribute `state_gzip` instead. Reads are strongly consistent, so a run compares with exactly
what the last one wrote; a save replaces whole items (runs of one schedule do not overlap).
The suppressions document (`mutguard suppressions push`) is the item whose key is
SUPPRESSIONS_KEY, its YAML text in `document` (no cluster key starts with `#`).

Claims (mutguard.state, "Claims": so that overlapping runs of one report alert once) are items
too, keyed `#claim|<report>|<cluster key>` (state.ClaimKey), written one by one with PutItem and
`attribute_not_exists(cluster_key)`: ConditionalCheckFailedException means another run holds
it. They carry `claimed_at` and `expires_at` (epoch seconds, CLAIM_DAYS later): enable the
table's TTL on `expires_at` so DynamoDB drops old claims. Releasing one deletes it through
BatchWriteItem. A claim marked delivered has the item `#delivered|<report>|<cluster key>`
(`delivered_at`, `expires_at`), put through BatchWriteItem and read by key. The function's role
needs dynamodb:BatchGetItem, BatchWriteItem and PutItem.
The region is boto3's (AWS_REGION in Lambda).

A scheduled run (mutguard.state, "Scheduled runs") is the item `#run|<run id>` (`parts`,
`started_at`), put by the dispatcher with `attribute_not_exists(cluster_key)` (a retried
dispatch keeps the first; the dispatcher's role needs only dynamodb:PutItem), and one item per
finished part, `#run|<run id>|<part>`, holding the part's summary as JSON in `summary` (gzip in
`summary_gzip` when over INLINE_LIMIT), replaced by each PutItem of it. All carry `expires_at`,
CLAIM_DAYS later, for the table's TTL. After putting its part, a worker adds the part's number
to the run item's number set `finished_parts` (UpdateItem ADD, which a redelivered part repeats
without effect; conditional on the run item existing, so an expired run is not made anew).
The finisher reads the run item (strongly consistent): its parts are read by key (BatchGetItem)
only when the set holds every part, so each worker of a big run reads one item, and the run's
reads grow with its parts, not with their square (a follow-up's digest reads every part).

The run begun last is the item LATEST_KEY (mutguard.store.LatestRun: `run`, `previous`,
`follow_up`, `sent`, and `version`, a token each write makes anew). It moves by compare-and-set
with PutItem alone: created with `attribute_not_exists`, replaced with `version = :read`, and a
write whose condition fails hands back the item it found (ReturnValuesOnConditionCheckFailure
ALL_OLD), which is how the dispatcher, whose role may only put, reads it.
"""

from __future__ import annotations

import datetime
import gzip
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from mutguard import clock
from mutguard.errors import InputError, StoreError
from mutguard.publish import aws
from mutguard.publish.retry import DeliveryError, RetryableError, RetryPolicy, call_with_retry
from mutguard.publish.secrets import Redactor
from mutguard.state import ClusterState, utc
from mutguard.store import (
    CLAIM_DAYS,
    ClaimKey,
    LatestRun,
    RunProgress,
    advance_latest,
    claim_each,
    mark_sent,
)

KEY = "cluster_key"
SUPPRESSIONS_KEY = "#suppressions"
CLAIM_PREFIX = "#claim|"
DELIVERED_PREFIX = "#delivered|"
RUN_PREFIX = "#run|"
LATEST_KEY = "#latest-run"
EXPIRES = "expires_at"  # the attribute the table's TTL reads
INLINE_LIMIT = 300_000  # bytes of JSON; DynamoDB's item limit is 400 KB
GET_BATCH = 100  # BatchGetItem: at most 100 keys per call
FINISHED_PARTS = "finished_parts"  # the run item's number set of the parts recorded
WRITE_BATCH = 25  # BatchWriteItem: at most 25 puts per call

Item = dict[str, Any]  # attribute name -> DynamoDB AttributeValue
T = TypeVar("T")
NO_ITEM_YET = {  # the condition of a write that creates an item, never replaces one
    "ConditionExpression": "attribute_not_exists(#key)",
    "ExpressionAttributeNames": {"#key": KEY},
}


class DynamoDbStateStore:
    def __init__(self, table: str, retry: RetryPolicy | None = None) -> None:
        if not table:
            raise InputError("state store dynamodb needs a table: dynamodb:TABLE")
        self.table = table
        self._what = f"state store dynamodb:{table}"
        self._retry = retry or RetryPolicy()
        self._client: Any = None

    def load(self, keys: Iterable[str]) -> dict[str, ClusterState]:
        return {item[KEY]["S"]: state_of_item(item) for item in self._get_all(keys)}

    def save(self, states: Mapping[str, ClusterState]) -> None:
        saved_at = clock.now().isoformat()
        puts = [{"PutRequest": {"Item": item_of_state(k, s, saved_at)}} for k, s in states.items()]
        for start in range(0, len(puts), WRITE_BATCH):
            self._write(puts[start : start + WRITE_BATCH])

    def load_suppressions(self) -> str | None:
        items = self._get([SUPPRESSIONS_KEY])
        return items[0]["document"]["S"] if items else None

    def save_suppressions(self, document: str) -> None:
        saved_at = clock.now().isoformat()
        item = {
            KEY: {"S": SUPPRESSIONS_KEY},
            "saved_at": {"S": saved_at},
            "document": {"S": document},
        }
        self._write([{"PutRequest": {"Item": item}}])

    def claim(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        now = clock.now()
        expires = int((now + datetime.timedelta(days=CLAIM_DAYS)).timestamp())
        run = uuid.uuid4().hex  # a retried PutItem whose first try was written finds its own

        def claim_one(key: ClaimKey) -> bool:
            item = {
                KEY: {"S": claim_item_key(key)},
                "run": {"S": run},
                "claimed_at": {"S": now.isoformat()},
                EXPIRES: {"N": str(expires)},
            }
            return self._put_new(item)

        return claim_each(self, keys, claim_one)

    def release(self, keys: Iterable[ClaimKey]) -> None:
        deletes = [
            {"DeleteRequest": {"Key": {KEY: {"S": claim_item_key(key)}}}}
            for key in dict.fromkeys(keys)
        ]
        for start in range(0, len(deletes), WRITE_BATCH):
            self._write(deletes[start : start + WRITE_BATCH], "release claims in")

    def mark_delivered(self, keys: Iterable[ClaimKey]) -> None:
        delivered_at = {"S": clock.now().isoformat()}
        expires = {"N": str(_expiry())}
        puts = [
            {
                "PutRequest": {
                    "Item": {
                        KEY: {"S": delivered_item_key(key)},
                        "delivered_at": delivered_at,
                        EXPIRES: expires,
                    }
                }
            }
            for key in dict.fromkeys(keys)
        ]
        for start in range(0, len(puts), WRITE_BATCH):
            self._write(puts[start : start + WRITE_BATCH], "mark alerts delivered in")

    def delivered(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        wanted = {delivered_item_key(key): key for key in keys}
        return {wanted[item[KEY]["S"]] for item in self._get_all(wanted)}

    def begin_run(self, run_id: str, parts: int, started_at: datetime.datetime) -> str | None:
        item = {
            KEY: {"S": run_item_key(run_id)},
            "parts": {"N": str(parts)},
            "started_at": {"S": utc(started_at).isoformat()},
            EXPIRES: {"N": str(_expiry())},
        }
        # Not written: recorded already (a retried dispatch), and the first record stands.
        self._run("record the run in", lambda: self._put_if(item, NO_ITEM_YET))
        return advance_latest(run_id, self._replace_latest)

    def digest_sent(self, run_id: str) -> None:
        mark_sent(run_id, self._latest, self._replace_latest)

    def _latest(self) -> LatestRun | None:
        found = self._get([LATEST_KEY])
        return _latest_of_item(found[0]) if found else None

    def _replace_latest(self, expected: LatestRun | None, new: LatestRun) -> LatestRun | None:
        """PutItem of the pointer if it is still `expected` (by its version token)."""
        token = uuid.uuid4().hex
        item: Item = {KEY: {"S": LATEST_KEY}, "version": {"S": token}, "sent": {"BOOL": new.sent}}
        for name in ("run", "previous", "follow_up"):
            if (value := getattr(new, name)) is not None:
                item[name] = {"S": value}
        condition = NO_ITEM_YET
        if expected is not None:
            condition = {
                "ConditionExpression": "#version = :version",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":version": {"S": expected.version}},
            }
        held = self._run("record the run in", lambda: self._put_if(item, condition))
        if held is None:
            return None
        if not held:  # the pointer expected was deleted in between
            return self._replace_latest(None, new)
        # A retried put whose first try was written finds its own token.
        return None if held.get("version") == item["version"] else _latest_of_item(held)

    def finish_part(self, run_id: str, part: int, summary: Mapping[str, Any]) -> None:
        text = json.dumps(summary, separators=(",", ":"))
        item: Item = {
            KEY: {"S": part_item_key(run_id, part)},
            "finished_at": {"S": clock.now().isoformat()},
            EXPIRES: {"N": str(_expiry())},
        }
        if len(text.encode()) > INLINE_LIMIT:
            item["summary_gzip"] = {"B": gzip.compress(text.encode())}
        else:
            item["summary"] = {"S": text}
        self._run(
            "record the run in",
            lambda: self._dynamodb().put_item(TableName=self.table, Item=item),
        )
        count = {
            "Key": {KEY: {"S": run_item_key(run_id)}},
            "UpdateExpression": "ADD #finished :part",
            "ConditionExpression": "attribute_exists(#key)",
            "ExpressionAttributeNames": {"#finished": FINISHED_PARTS, "#key": KEY},
            "ExpressionAttributeValues": {":part": {"NS": [str(part)]}},
        }
        # Not written: the run is not recorded (expired), and run_progress says so.
        self._run("record the run in", lambda: self._write_if("update_item", count))

    def run_progress(self, run_id: str, every_part: bool = False) -> RunProgress:
        found = self._get([run_item_key(run_id)])
        if not found:
            return RunProgress(None, None)
        run = found[0]
        parts = int(run["parts"]["N"])
        started_at = datetime.datetime.fromisoformat(run["started_at"]["S"])
        counted = {int(part) for part in run.get(FINISHED_PARTS, {}).get("NS", [])}
        if not every_part and not counted.issuperset(range(1, parts + 1)):
            return RunProgress(parts, started_at)  # not complete: no part needs reading
        items = self._get_all(part_item_key(run_id, part) for part in range(1, parts + 1))
        finished = {
            int(item[KEY]["S"].rpartition("|")[2]): _summary_of_item(item) for item in items
        }
        return RunProgress(parts, started_at, finished)

    def _put_new(self, item: Item) -> bool:
        """PutItem only when no item has this key: True when written, False when one had (a
        retried put whose first try was written finds its own `run`)."""
        held = self._run("claim alerts in", lambda: self._put_if(item, NO_ITEM_YET))
        return held is None or held.get("run") == item["run"]

    def _put_if(self, item: Item, condition: Mapping[str, Any]) -> Item | None:
        """PutItem on this condition: None when written, else the item the condition found."""
        request = {"Item": item, "ReturnValuesOnConditionCheckFailure": "ALL_OLD", **condition}
        return self._write_if("put_item", request)

    def _write_if(self, operation: str, request: Mapping[str, Any]) -> Item | None:
        """A conditional write (`operation` of the client, on this table): None when written,
        else what ConditionalCheckFailedException handed back (the old item when the request
        asked for it and there was one, else {})."""
        from botocore.exceptions import ClientError

        try:
            getattr(self._dynamodb(), operation)(TableName=self.table, **request)
        except ClientError as err:
            if aws.error_code(err) != "ConditionalCheckFailedException":
                raise
            held: Item = err.response.get("Item", {})
            return held
        return None

    def _get_all(self, keys: Iterable[str]) -> list[Item]:
        """The items of these keys that exist, BatchGetItem's limit of keys per call apart."""
        wanted = list(dict.fromkeys(keys))  # BatchGetItem refuses duplicate keys
        items: list[Item] = []
        for start in range(0, len(wanted), GET_BATCH):
            items += self._get(wanted[start : start + GET_BATCH])
        return items

    def _get(self, keys: list[str]) -> list[Item]:
        found: list[Item] = []
        pending: dict[str, Any] = {
            self.table: {"Keys": [{KEY: {"S": key}} for key in keys], "ConsistentRead": True}
        }

        def one_round() -> None:
            nonlocal pending
            answer = self._dynamodb().batch_get_item(RequestItems=pending)
            found.extend(answer.get("Responses", {}).get(self.table, []))
            pending = answer.get("UnprocessedKeys") or {}
            if pending:  # DynamoDB throttled part of the batch: back off and ask for the rest
                raise RetryableError(f"{self._what}: BatchGetItem left keys unprocessed")

        self._run("read", one_round)
        return found

    def _write(self, puts: list[Item], verb: str = "save") -> None:
        pending: dict[str, Any] = {self.table: puts}

        def one_round() -> None:
            nonlocal pending
            answer = self._dynamodb().batch_write_item(RequestItems=pending)
            pending = answer.get("UnprocessedItems") or {}
            if pending:
                raise RetryableError(f"{self._what}: BatchWriteItem left items unprocessed")

        self._run(verb, one_round)

    def _run(self, verb: str, one_round: Callable[[], T]) -> T:
        """`verb` completes "could not ... the state": read, save, claim alerts in, ..."""
        try:
            return call_with_retry(lambda: aws.call(self._what, one_round, Redactor()), self._retry)
        except DeliveryError as err:
            raise StoreError(f"could not {verb} the state: {err}") from None

    def _dynamodb(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb", None)
        return self._client


def claim_item_key(key: ClaimKey) -> str:
    """`#claim|<report>|<cluster key>`: no cluster key starts with `#`."""
    cluster, report = key
    return f"{CLAIM_PREFIX}{report}|{cluster}"


def delivered_item_key(key: ClaimKey) -> str:
    cluster, report = key
    return f"{DELIVERED_PREFIX}{report}|{cluster}"


def run_item_key(run_id: str) -> str:
    """`#run|<run id>`: no cluster key starts with `#`."""
    return f"{RUN_PREFIX}{run_id}"


def part_item_key(run_id: str, part: int) -> str:
    return f"{RUN_PREFIX}{run_id}|{part}"


def _latest_of_item(item: Item) -> LatestRun:
    values = {name: item[name]["S"] for name in ("run", "previous", "follow_up") if name in item}
    values["sent"] = item.get("sent", {}).get("BOOL", False)
    return LatestRun.from_dict(values, item["version"]["S"])


def _summary_of_item(item: Item) -> Any:
    if "summary_gzip" in item:
        return json.loads(gzip.decompress(item["summary_gzip"]["B"]))
    return json.loads(item["summary"]["S"])


def _expiry() -> int:
    """Epoch seconds CLAIM_DAYS from now, for the table's TTL."""
    return int((clock.now() + datetime.timedelta(days=CLAIM_DAYS)).timestamp())


def item_of_state(key: str, state: ClusterState, saved_at: str) -> Item:
    from boto3.dynamodb.types import TypeSerializer

    data = state.to_dict()
    text = json.dumps(data, separators=(",", ":"))
    item: Item = {KEY: {"S": key}, "saved_at": {"S": saved_at}}
    if len(text.encode()) > INLINE_LIMIT:
        item["state_gzip"] = {"B": gzip.compress(text.encode())}
    else:
        item["state"] = TypeSerializer().serialize(data)
    return item


def state_of_item(item: Item) -> ClusterState:
    from boto3.dynamodb.types import TypeDeserializer

    if "state_gzip" in item:
        return ClusterState.from_dict(json.loads(gzip.decompress(item["state_gzip"]["B"])))
    return ClusterState.from_dict(_plain(TypeDeserializer().deserialize(item["state"])))


def _plain(value: Any) -> Any:
    """DynamoDB numbers come back as Decimal; the state holds only whole numbers."""
    if isinstance(value, Decimal):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def open_store(location: str) -> DynamoDbStateStore:
    return DynamoDbStateStore(location)
