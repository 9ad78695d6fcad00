"""A scheduled run's progress on the cloud stores that keep a run's parts as objects or entities
of their own (GCS, Azure Table): a finisher reads the parts' summaries only once every part is
there, so the reads of a run of many parts grow with its parts, not with their square
(mutguard.store, "Scheduled runs"). Real clients against the local GCS fake and Azurite."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest
from conftest import AZURE_CONNECTION_ENV, MakeStore, no_waiting
from google.cloud import storage

from mutguard.errors import StoreError
from mutguard.publish import EnvSecrets
from mutguard.publish.stores.azure_table import AzureTableStateStore
from mutguard.publish.stores.gcs import GcsStateStore
from mutguard.store import RunProgress

from servers.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from servers.gcs import BUCKET, GcsServer
from servers.table_counter import TableCounter

START = datetime.datetime(2026, 3, 2, 6, 0, tzinfo=datetime.UTC)
PARTS = 40  # finishers reading every finished part read 820 summaries; each once, 40
PART_READS = r"/download/storage/v1/b/[^/]+/o/.*%2Fparts%2F\d+\.json"
LISTINGS = r"/storage/v1/b/[^/]+/o"

cloud_stores = pytest.mark.parametrize("new_store", ["gcs", "azure-table"], indirect=True)


def summary(part: int) -> dict[str, Any]:
    return {"clusters": [{"key": f"eks:111111111111:eu-west-1:c{part}", "mut": part}]}


def finish_in_order(new_store: MakeStore, run_id: str, parts: int) -> list[RunProgress]:
    """Each part finished by a worker of its own, in order (as a queue mostly delivers them),
    which then reads the run back as fleet.finish_part does: what each worker read."""
    new_store().begin_run(run_id, parts, START)
    read = []
    for part in range(1, parts + 1):
        store = new_store()
        store.finish_part(run_id, part, summary(part))
        read.append(store.run_progress(run_id))
    return read


@cloud_stores
def test_only_the_worker_that_finishes_a_run_reads_its_summaries(new_store: MakeStore):
    read = finish_in_order(new_store, "in-order", PARTS)
    assert [progress.finished for progress in read[:-1]] == [{}] * (PARTS - 1)
    assert [progress.complete for progress in read] == [False] * (PARTS - 1) + [True]
    last = read[-1]
    assert (last.parts, last.started_at) == (PARTS, START)
    assert last.finished == {part: summary(part) for part in range(1, PARTS + 1)}


@cloud_stores
def test_a_run_with_a_part_missing_reads_no_summary_but_a_follow_up_reads_what_finished(
    new_store: MakeStore,
):
    new_store().begin_run("gap", 4, START)
    for part in (1, 2, 4):
        new_store().finish_part("gap", part, summary(part))
    progress = new_store().run_progress("gap")
    assert (progress.parts, progress.started_at, progress.finished) == (4, START, {})
    assert not progress.complete
    follow_up = new_store().run_progress("gap", every_part=True)
    assert (follow_up.parts, follow_up.complete) == (4, False)
    assert follow_up.finished == {part: summary(part) for part in (1, 2, 4)}
    new_store().finish_part("gap", 3, summary(3))
    assert new_store().run_progress("gap").finished == {p: summary(p) for p in range(1, 5)}


@cloud_stores
def test_parts_of_an_unrecorded_run_make_no_progress(new_store: MakeStore):
    new_store().finish_part("expired", 1, summary(1))
    assert new_store().run_progress("expired") == RunProgress(None, None)


def test_a_run_finished_in_order_on_gcs_reads_each_summary_once(gcs: GcsServer):
    """Part by part up to the first missing, 8 at a time, the finishers of 40 parts read 992
    summaries (about n²/2); listing the names first, each is read once, by the last."""

    def new_store() -> GcsStateStore:
        return GcsStateStore(f"{BUCKET}/linear", retry=no_waiting())

    finish_in_order(new_store, "in-order", PARTS)
    assert gcs.requests_seen("GET", PART_READS) == PARTS
    assert gcs.requests_seen("GET", LISTINGS) == PARTS  # one page of names per finisher


def test_a_listing_gcs_refuses_is_one_error_naming_the_store_and_a_failed_one_is_retried(
    gcs: GcsServer,
):
    store = GcsStateStore(f"{BUCKET}/denied", retry=no_waiting())
    store.begin_run("listed", 2, START)
    store.finish_part("listed", 1, summary(1))
    gcs.fail("GET", LISTINGS, 503, times=1)
    assert store.run_progress("listed") == RunProgress(2, START)
    denied = "Permission 'storage.objects.list' denied on resource (or it may not exist)."
    gcs.fail("GET", LISTINGS, 403, message=denied)
    with pytest.raises(StoreError) as raised:
        store.run_progress("listed")
    assert str(raised.value) == (
        f"could not read the run in the state: state store gcs:{BUCKET}/denied answered HTTP "
        f"403: {denied}"
    )
    assert gcs.requests_seen("GET", LISTINGS) == 3


def test_a_run_finished_in_order_on_azure_table_reads_each_summary_once(azurite: Azurite):
    """Querying every entity of the run, the finishers of 40 parts read 820 summaries (n²/2);
    querying the RowKeys first, each is read once, by the last."""
    table = f"scale{uuid.uuid4().hex[:12]}"
    with TableCounter(azurite.table_url) as counter:
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint={counter.url};"
        )
        secrets = EnvSecrets({AZURE_CONNECTION_ENV: connection})

        def new_store() -> AzureTableStateStore:
            return AzureTableStateStore(table, secrets=secrets, retry=no_waiting())

        finish_in_order(new_store, "in-order", PARTS)
        assert counter.summaries_read == PARTS


def test_the_gcs_fake_lists_names_by_prefix_a_page_at_a_time(gcs: GcsServer):
    """The listing route as the real client pages through it (nextPageToken, pageToken)."""
    client = storage.Client(project=None)
    bucket = client.bucket(BUCKET)
    names = ["runs/r/parts/3.json", "runs/r/parts/1.json", "runs/r/parts/2.json"]
    for name in [*names, "runs/r/run.json", "runs/q/parts/1.json"]:
        bucket.blob(name).upload_from_string(b"{}", content_type="application/json")
    listed = client.list_blobs(
        BUCKET, prefix="runs/r/parts/", fields="items(name),nextPageToken", page_size=2
    )
    assert [blob.name for blob in listed] == sorted(names)
    assert gcs.requests_seen("GET", LISTINGS) == 2
    assert list(client.list_blobs(BUCKET, prefix="runs/none/")) == []
