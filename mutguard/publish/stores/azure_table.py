"""The state store on Azure Table storage (`--state-store azure-table:TABLE`): one entity per
cluster, for runs that have no disk of their own (a timer-triggered Azure Function).

The storage account comes from the connection string in $MUTGUARD_AZURE_STORAGE_CONNECTION_STRING,
else from the table service endpoint in $MUTGUARD_AZURE_TABLE_ENDPOINT
(https://ACCOUNT.table.core.windows.net), reached with DefaultAzureCredential (a function app's
managed identity, which needs Storage Table Data Contributor); the table is created by the first
save if it does not exist (an existing table needs only entity read and write rights, e.g. a
table SAS). Each entity has:
- PartitionKey `cluster` and RowKey the cluster key (models.cluster_key) percent-escaped, since
  keys may not hold `/`, `\\`, `#`, `?` or control characters;
- `cluster` (the key as it is) and `saved_at` (ISO 8601, UTC);
- `state`: ClusterState.to_dict() as JSON, readable in Storage Explorer, with the cluster's
  MUT history (`history`; an entity written before it was kept has none and loads with none).
  A string property holds at most 64 KiB of UTF-16, so a bigger state (a cluster with hundreds
  of findings) is kept gzip-compressed in Binary properties `state_gzip_0`, `state_gzip_1`, ...
  (64 KiB each at most) with their count in `state_gzip_parts`; an entity holds at most 1 MiB
  in all.
The suppressions document (`mutguard suppressions push`) is the entity PartitionKey
`suppressions`, RowKey `current`, its YAML text in `document`.
Claims (mutguard.state, "Claims": so that overlapping runs of one report alert once) are
entities with PartitionKey `claim` and RowKey `<report>|<cluster key>` (state.ClaimKey, escaped
as above), holding `run` and `claimed_at`; each is written with create_entity (insert, never
replace), so ResourceExistsError (409) means another run holds it. A claim marked delivered
has the entity PartitionKey `delivered` with the same RowKey (`delivered_at`). Claiming also
deletes claims and marks made more than CLAIM_DAYS ago; releasing one deletes it.
A scheduled run (mutguard.state, "Scheduled runs") is entities with PartitionKey `run`: RowKey
`<run id>|count` (`parts`, `started_at`), inserted by the dispatcher with create_entity (a
retried dispatch keeps the first), and `<run id>|part|<part>` per finished part, its summary as
JSON in `summary` (packed like a state when bigger), upserted by each write of it; all carry
`recorded_at`, and recording a run deletes those recorded more than CLAIM_DAYS ago. The
finisher queries the run's RowKey range (strongly consistent) for the RowKeys and the count's
fields only (`$select`), and queries the range again for the parts' summaries only when every
part is there: each worker of a big run reads no summary, and a run's reads grow with its
parts, not with their square (a follow-up's digest reads every summary). RowKey
`latest` is the run begun last (mutguard.store.LatestRun), moved by compare-and-set: inserted
with create_entity, replaced with update_entity If-Match the ETag read.
A save replaces whole entities (runs of one schedule do not overlap); SDK retries are off and
the run's RetryPolicy retries instead. Failures raise stores.StoreError naming the table.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from mutguard import clock
from mutguard.errors import InputError, StoreError
from mutguard.publish import azure_storage
from mutguard.publish.retry import DeliveryError, RetryPolicy, call_with_retry
from mutguard.publish.secrets import EnvSecrets, MissingSecret, Redactor, SecretSource
from mutguard.state import ClusterState, utc
from mutguard.store import (
    ClaimKey,
    LatestRun,
    RunProgress,
    advance_latest,
    claim_cutoff,
    claim_each,
    mark_sent,
    settle_write,
)

T = TypeVar("T")
Entity = dict[str, Any]

PARTITION = "cluster"
SUPPRESSIONS = {"PartitionKey": "suppressions", "RowKey": "current"}
CLAIMS = "claim"
DELIVERED = "delivered"
RUNS = "run"
LATEST_RUN = "latest"  # the pointer's RowKey; a run's own RowKeys hold a `|`
# Table names: 3-63 letters and digits, starting with a letter.
TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")
INLINE_LIMIT = 64_000  # bytes of the JSON as UTF-16; a string property holds at most 64 KiB
CHUNK_BYTES = 64_000  # a Binary property holds at most 64 KiB
MAX_CHUNKS = 15  # with the other properties, within the 1 MiB an entity may hold
# Without a connection string: the table service endpoint, reached with an Entra ID token.
TABLE_ENDPOINT_ENV = "MUTGUARD_AZURE_TABLE_ENDPOINT"


def row_key(cluster_key: str) -> str:
    """The cluster key with `%`, `/`, `\\`, `#`, `?`, control and non-ASCII characters escaped."""
    return quote(cluster_key, safe=":")


def claim_row_key(key: ClaimKey) -> str:
    cluster, report = key
    return f"{row_key(report)}|{row_key(cluster)}"


def run_count_key(run_id: str) -> str:
    return f"{row_key(run_id)}|count"


def run_parts_prefix(run_id: str) -> str:
    return f"{row_key(run_id)}|part|"


def run_part_key(run_id: str, part: int) -> str:
    return f"{run_parts_prefix(run_id)}{part}"


def run_record(
    run_id: str, entities: Iterable[Entity]
) -> tuple[int | None, datetime.datetime | None]:
    """The run's part count and start from its count entity among these (None, None: none)."""
    count = next((e for e in entities if e["RowKey"] == run_count_key(run_id)), None)
    if count is None:
        return None, None
    return int(count["parts"]), datetime.datetime.fromisoformat(count["started_at"])


def entity_of_state(key: str, state: ClusterState, saved_at: str) -> Entity:
    text = json.dumps(state.to_dict(), separators=(",", ":"))
    entity: Entity = {
        "PartitionKey": PARTITION,
        "RowKey": row_key(key),
        "cluster": key,
        "saved_at": saved_at,
    }
    return {**entity, **packed("state", text, f"the state of cluster {key}")}


def state_of_entity(entity: Mapping[str, Any]) -> ClusterState:
    return ClusterState.from_dict(json.loads(unpacked("state", entity)))


def packed(name: str, text: str, what: str) -> Entity:
    """JSON text as the property `name`, or, when a string property cannot hold it,
    gzip-compressed in Binary properties `<name>_gzip_0`, ... with their count in
    `<name>_gzip_parts`."""
    if len(text.encode("utf-16-le")) <= INLINE_LIMIT:
        return {name: text}
    data = gzip.compress(text.encode())
    chunks = [data[i : i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)]
    if len(chunks) > MAX_CHUNKS:
        raise StoreError(
            f"{what} is {len(data)} bytes compressed, more than an Azure Table entity holds "
            f"({MAX_CHUNKS * CHUNK_BYTES})"
        )
    return {
        f"{name}_gzip_parts": len(chunks),
        **{f"{name}_gzip_{index}": chunk for index, chunk in enumerate(chunks)},
    }


def unpacked(name: str, entity: Mapping[str, Any]) -> str:
    if name in entity:
        return str(entity[name])
    chunks = (entity[f"{name}_gzip_{i}"] for i in range(entity[f"{name}_gzip_parts"]))
    return gzip.decompress(b"".join(chunks)).decode()


class AzureTableStateStore:
    def __init__(
        self,
        table: str,
        secrets: SecretSource | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not TABLE_NAME.match(table):
            raise InputError(
                "state store azure-table needs a table name of 3-63 letters and digits, starting "
                "with a letter: azure-table:TABLE"
            )
        self.table = table
        self._what = f"state store azure-table:{table}"
        self._secrets = secrets or EnvSecrets()
        self._retry = retry or RetryPolicy()
        self._redactor = Redactor()
        self._client: Any = None

    def load(self, keys: Iterable[str]) -> dict[str, ClusterState]:
        wanted = {row_key(key): key for key in keys}
        entities = self._run("read", self._partition)
        return {
            wanted[entity["RowKey"]]: state_of_entity(entity)
            for entity in entities
            if entity["RowKey"] in wanted
        }

    def save(self, states: Mapping[str, ClusterState]) -> None:
        saved_at = clock.now().isoformat()
        for key, state in states.items():
            entity = entity_of_state(key, state, saved_at)
            self._run("save", lambda entity=entity: self._upsert(entity))

    def load_suppressions(self) -> str | None:
        entity = self._run("read", self._suppressions)
        return None if entity is None else str(entity["document"])

    def save_suppressions(self, document: str) -> None:
        if len(document.encode("utf-16-le")) > INLINE_LIMIT:
            raise StoreError(
                f"{self._what}: a suppressions document holds at most 32,000 characters"
            )
        saved_at = clock.now().isoformat()
        entity = {**SUPPRESSIONS, "document": document, "saved_at": saved_at}
        self._run("save", lambda: self._upsert(entity))

    def claim(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return set()
        self._run("claim alerts in", lambda: self._drop_old(CLAIMS, "claimed_at"))
        self._run("claim alerts in", lambda: self._drop_old(DELIVERED, "delivered_at"))
        run = uuid.uuid4().hex
        claimed_at = clock.now()

        def claim_one(key: ClaimKey) -> bool:
            entity = {
                "PartitionKey": CLAIMS,
                "RowKey": claim_row_key(key),
                "run": run,
                "claimed_at": claimed_at,
            }
            return bool(self._run("claim alerts in", lambda: self._create(entity)))

        return claim_each(self, wanted, claim_one)

    def release(self, keys: Iterable[ClaimKey]) -> None:
        for key in dict.fromkeys(keys):
            row = claim_row_key(key)
            self._run("release claims in", lambda row=row: self._table().delete_entity(CLAIMS, row))

    def mark_delivered(self, keys: Iterable[ClaimKey]) -> None:
        delivered_at = clock.now()
        for key in dict.fromkeys(keys):
            entity = {
                "PartitionKey": DELIVERED,
                "RowKey": claim_row_key(key),
                "delivered_at": delivered_at,
            }
            self._run("mark alerts delivered in", lambda entity=entity: self._upsert(entity))

    def delivered(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        from azure.core.exceptions import ResourceNotFoundError

        def marked(key: ClaimKey) -> bool:
            try:
                self._table().get_entity(DELIVERED, claim_row_key(key), select=["RowKey"])
            except ResourceNotFoundError:
                return False
            return True

        return {key for key in dict.fromkeys(keys) if self._run("read", lambda k=key: marked(k))}

    def begin_run(self, run_id: str, parts: int, started_at: datetime.datetime) -> str | None:
        self._run("record the run in", lambda: self._drop_old(RUNS, "recorded_at"))
        entity = {
            "PartitionKey": RUNS,
            "RowKey": run_count_key(run_id),
            "run": run_id,
            "parts": parts,
            "started_at": utc(started_at).isoformat(),
            "recorded_at": clock.now(),
        }
        # False: recorded already (a retried dispatch), and the first record stands.
        self._run("record the run in", lambda: self._create(entity))
        return advance_latest(run_id, self._replace_latest)

    def digest_sent(self, run_id: str) -> None:
        mark_sent(run_id, self._latest, self._replace_latest)

    def _latest(self) -> LatestRun | None:
        def read() -> LatestRun | None:
            from azure.core.exceptions import ResourceNotFoundError

            try:
                entity = self._table().get_entity(RUNS, LATEST_RUN)
            except ResourceNotFoundError:  # no table, or no pointer in it
                return None
            return LatestRun.from_dict(entity, entity.metadata["etag"])

        return self._run("read the run in", read)

    def _replace_latest(self, expected: LatestRun | None, new: LatestRun) -> LatestRun | None:
        """Insert the pointer (none expected) or replace it If-Match `expected`'s ETag."""
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )
        from azure.data.tables import UpdateMode

        fields = {k: v for k, v in new.to_dict().items() if v is not None}
        entity = {"PartitionKey": RUNS, "RowKey": LATEST_RUN, **fields}

        def write() -> bool:
            try:
                if expected is None:
                    self._insert(entity)
                    return True
                self._table().update_entity(
                    entity,
                    mode=UpdateMode.REPLACE,
                    etag=expected.version,
                    match_condition=MatchConditions.IfNotModified,
                )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                return False
            return True

        written = self._run("record the run in", write)
        return settle_write(written, new, self._latest, self._replace_latest)

    def finish_part(self, run_id: str, part: int, summary: Mapping[str, Any]) -> None:
        text = json.dumps(summary, separators=(",", ":"))
        entity = {
            "PartitionKey": RUNS,
            "RowKey": run_part_key(run_id, part),
            "run": run_id,
            "part": part,
            "recorded_at": clock.now(),
            **packed("summary", text, f"the summary of part {part} of run {run_id}"),
        }
        self._run("record the run in", lambda: self._upsert(entity))

    def run_progress(self, run_id: str, every_part: bool = False) -> RunProgress:
        if not every_part:
            # The RowKeys first: the workers of a big run read no summary until every part is
            # there.
            rows = self._run(
                "read the run in",
                lambda: self._run_entities(run_id, ["RowKey", "parts", "started_at"]),
            )
            parts, started_at = run_record(run_id, rows)
            prefix = run_parts_prefix(run_id)
            listed = {
                int(row["RowKey"].removeprefix(prefix))
                for row in rows
                if row["RowKey"].startswith(prefix)
            }
            if parts is None or not listed.issuperset(range(1, parts + 1)):
                return RunProgress(parts, started_at)
        entities = self._run("read the run in", lambda: self._run_entities(run_id))
        finished = {
            int(e["part"]): json.loads(unpacked("summary", e)) for e in entities if "part" in e
        }
        return RunProgress(*run_record(run_id, entities), finished)

    def _run_entities(self, run_id: str, select: list[str] | None = None) -> list[Entity]:
        """The run's entities, with only the `select` properties when given."""
        from azure.core.exceptions import ResourceNotFoundError

        # Every RowKey of the run starts with "<run id>|"; "}" sorts right after "|".
        first = f"{row_key(run_id)}|"
        try:
            query = self._table().query_entities(
                "PartitionKey eq @partition and RowKey ge @first and RowKey lt @after",
                parameters={"partition": RUNS, "first": first, "after": f"{row_key(run_id)}}}"},
                select=select,
            )
            return [dict(entity) for entity in query]
        except ResourceNotFoundError:  # no table yet
            return []

    def _insert(self, entity: Entity) -> None:
        """create_entity, creating the table when there is none; ResourceExistsError when an
        entity has its RowKey."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        table = self._table()
        try:
            table.create_entity(entity)
        except ResourceNotFoundError:  # no table yet: create it, then insert
            with contextlib.suppress(ResourceExistsError):  # another run just created it
                table.create_table()
            table.create_entity(entity)

    def _create(self, entity: Entity) -> bool:
        """Insert the entity (a claim, a run's count) unless its RowKey exists: True when
        inserted. A retry that finds the entity its own first try inserted counts as inserted."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            self._insert(entity)
        except ResourceExistsError:
            try:
                held = self._table().get_entity(entity["PartitionKey"], entity["RowKey"])
            except ResourceNotFoundError:  # released in between: still not this run's
                return False
            return bool(held.get("run") == entity["run"])
        return True

    def _drop_old(self, partition: str, recorded: str) -> None:
        """Delete the partition's entities whose `recorded` time is over CLAIM_DAYS old."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            old = list(
                self._table().query_entities(
                    f"PartitionKey eq @partition and {recorded} lt @cutoff",
                    parameters={"partition": partition, "cutoff": claim_cutoff()},
                    select=["PartitionKey", "RowKey"],
                )
            )
        except ResourceNotFoundError:  # no table yet
            return
        for entity in old:
            self._table().delete_entity(entity["PartitionKey"], entity["RowKey"])

    def _suppressions(self) -> Entity | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            keys = SUPPRESSIONS
            return dict(self._table().get_entity(keys["PartitionKey"], keys["RowKey"]))
        except ResourceNotFoundError:  # no table, or no document in it
            return None

    def _partition(self) -> list[Entity]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            query = self._table().query_entities(
                "PartitionKey eq @partition", parameters={"partition": PARTITION}
            )
            return [dict(entity) for entity in query]
        except ResourceNotFoundError:  # no table yet: nothing was saved before
            return []

    def _upsert(self, entity: Entity) -> None:
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        table = self._table()
        try:
            table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except ResourceNotFoundError:  # the first save: create the table, then write
            with contextlib.suppress(ResourceExistsError):  # another run just created it
                table.create_table()
            table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def _run(self, verb: str, action: Callable[[], T]) -> T:
        try:
            return call_with_retry(
                lambda: azure_storage.call(self._what, action, self._redactor), self._retry
            )
        except DeliveryError as err:  # its message names the store already
            raise StoreError(f"could not {verb} the state: {err}") from None
        except MissingSecret as err:
            raise StoreError(f"{self._what}: {err}") from None

    def _table(self) -> Any:
        if self._client is None:
            from azure.data.tables import TableClient

            try:
                connection = azure_storage.connection_string(
                    self._secrets, azure_storage.CONNECTION_STRING_ENV, self._redactor
                )
            except MissingSecret:
                endpoint = self._endpoint()
                if endpoint is None:
                    raise
                from azure.identity import DefaultAzureCredential

                self._client = TableClient(
                    endpoint, self.table, credential=DefaultAzureCredential(), retry_total=0
                )
            else:
                self._client = TableClient.from_connection_string(
                    connection, table_name=self.table, retry_total=0
                )
        return self._client

    def _endpoint(self) -> str | None:
        try:
            return self._secrets.get(TABLE_ENDPOINT_ENV)
        except MissingSecret:
            return None


def open_store(location: str) -> AzureTableStateStore:
    return AzureTableStateStore(location)
