"""The state store on Google Cloud Storage (`--state-store gcs:BUCKET[/PREFIX]`): one object per
cluster, for runs that have no disk of their own (a scheduled Cloud Function or Cloud Run job).

Objects, under PREFIX when one is given:
- `clusters/<cluster key>.json`, one per cluster: `{"cluster": KEY, "saved_at": ISO 8601 UTC,
  "state": ClusterState.to_dict()}`, Content-Type application/json. The state's `history` (the
  cluster's last runs' MUT) is written with it; a document without one (written before it was
  kept) loads with none. The key (models.cluster_key) is percent-escaped: `/` would make
  pseudo-folders, and GCS advises against `#`, `?`, `[`, `]`, `*` and control characters in
  names. A document over GZIP_OVER bytes (a cluster with
  hundreds of findings) is stored gzip-compressed with Content-Encoding gzip; the client
  library, `gcloud storage cat` and the console's download decompress it, so every object reads
  as JSON.
- `suppressions.yaml`: the suppressions document (`mutguard suppressions push`).
- `claims/<report>/<cluster key>` (state.ClaimKey, both escaped as above), one small JSON
  object per claim (mutguard.state, "Claims": so that overlapping runs of one report alert
  once), uploaded with `ifGenerationMatch=0`: GCS writes it only when no live object has that
  name, and 412 Precondition Failed means another run holds it. Releasing a claim deletes its
  object. A claim marked delivered has the object `claims/<report>/<cluster key>/delivered`
  too (no claim's name has a third `/`: both parts are escaped). A lifecycle rule (age
  CLAIM_DAYS, prefix `claims/`) may drop old claims and marks.
- `runs/<run id>/run.json`, a scheduled run's part count and start (mutguard.state, "Scheduled
  runs"), created by the dispatcher with `ifGenerationMatch=0` (a retried dispatch keeps the
  first), and `runs/<run id>/parts/<part>.json`, each finished part's summary, replaced whole by
  each write of it. The finisher reads the run, then lists the names under
  `runs/<run id>/parts/` (names only, `fields=items(name),nextPageToken`; object listing is
  strongly consistent in GCS, so it shows every part written before) and reads the parts'
  summaries only when every part is listed: each worker of a big run reads the run's object and
  its parts' names (a page per 1,000 parts), and a run's reads grow with its parts, not with
  their square (a follow-up's digest reads every part by name). A lifecycle rule (prefix
  `runs/`) may drop old runs.
- `latest-run.json`, the run begun last (mutguard.store.LatestRun), moved by compare-and-set:
  created with `ifGenerationMatch=0`, replaced with `ifGenerationMatch=<the generation read>`.

Each cluster is an object of its own, so runs that save different clusters at the same time
(function instances per account or project) never overwrite one another. A save replaces the
objects of the clusters it names (runs of one schedule do not overlap) and writes whole objects
without preconditions, so retrying it is safe. Objects are read and written WORKERS at a time.
An object that does not exist is a cluster never saved; so is a bucket that does not exist,
until the first save fails naming it.

Credentials are Application Default Credentials; the service account needs
storage.objects.get, storage.objects.list (a finisher lists a run's parts),
storage.objects.create and storage.objects.delete (replacing an object deletes the old one;
releasing a claim deletes it) on the bucket, e.g. roles/storage.objectUser. With
STORAGE_EMULATOR_HOST set (`http://HOST:PORT`) the client library talks to that server instead,
with anonymous credentials (an emulator, or a test server). The library's own retries are off:
the run's RetryPolicy retries what GCS's retry strategy calls transient (408, 429, 5xx, broken
connections, a download whose checksum does not match). Failures raise errors.StoreError naming
the store.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import quote

from mutguard import clock
from mutguard.errors import InputError, StoreError
from mutguard.publish.google_errors import NO_CREDENTIALS
from mutguard.publish.retry import DeliveryError, RetryableError, RetryPolicy, call_with_retry
from mutguard.publish.text import truncate
from mutguard.state import ClusterState, utc
from mutguard.store import (
    ClaimKey,
    LatestRun,
    RunProgress,
    advance_latest,
    give_back,
    mark_sent,
    settle_write,
)

T = TypeVar("T")

# Bucket names: 3-63 characters (up to 222 with dots) of lowercase letters, digits, `-`, `_`
# and `.`, starting and ending with a letter or digit.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
CLUSTERS = "clusters/"
CLAIMS = "claims/"
RUNS = "runs/"
SUPPRESSIONS = "suppressions.yaml"
LATEST_RUN = "latest-run.json"
GZIP_OVER = 64 * 1024  # bytes of JSON; smaller documents stay plain, for `gcloud storage cat`
WORKERS = 8
TIMEOUT_SECONDS = 30.0
# What GCS's retry strategy (and the client library's own retry predicate) calls transient.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def object_name(cluster_key: str) -> str:
    """`clusters/<key>.json`, the key percent-escaped but for letters, digits, `_.-~` and `:`
    (so no `/`, `#`, `?`, `[`, `]`, `*`, control or non-ASCII characters remain)."""
    return f"{CLUSTERS}{quote(cluster_key, safe=':')}.json"


def claim_name(key: ClaimKey) -> str:
    """`claims/<report>/<cluster key>`, both escaped as object_name escapes."""
    cluster, report = key
    return f"{CLAIMS}{quote(report, safe=':')}/{quote(cluster, safe=':')}"


def delivered_name(key: ClaimKey) -> str:
    return f"{claim_name(key)}/delivered"


def run_name(run_id: str) -> str:
    return f"{RUNS}{quote(run_id, safe=':')}/run.json"


def parts_folder(run_id: str) -> str:
    return f"{RUNS}{quote(run_id, safe=':')}/parts/"


def part_name(run_id: str, part: int) -> str:
    return f"{parts_folder(run_id)}{part}.json"


def document_of_state(key: str, state: ClusterState, saved_at: str) -> bytes:
    document = {"cluster": key, "saved_at": saved_at, "state": state.to_dict()}
    return json.dumps(document, separators=(",", ":")).encode()


def state_of_document(data: bytes) -> ClusterState:
    return ClusterState.from_dict(json.loads(data)["state"])


class GcsStateStore:
    def __init__(self, location: str, retry: RetryPolicy | None = None) -> None:
        bucket, _, prefix = location.partition("/")
        if not BUCKET_NAME.match(bucket):
            raise InputError(
                "state store gcs needs a bucket name (lowercase letters, digits, '-', '_' and "
                "'.'): gcs:BUCKET[/PREFIX]"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.name = f"gcs:{bucket}/{self.prefix}" if self.prefix else f"gcs:{bucket}"
        self._what = f"state store {self.name}"
        self._retry = retry or RetryPolicy()
        self._client: Any = None
        self._client_lock = threading.Lock()

    def load(self, keys: Iterable[str]) -> dict[str, ClusterState]:
        wanted = list(dict.fromkeys(keys))
        found = self._read_each("read the state", [object_name(key) for key in wanted])
        documents = dict(zip(wanted, found, strict=True))
        return {key: state_of_document(data) for key, data in documents.items() if data is not None}

    def save(self, states: Mapping[str, ClusterState]) -> None:
        saved_at = clock.now().isoformat()
        documents = {
            object_name(key): document_of_state(key, state, saved_at)
            for key, state in states.items()
        }
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="mutguard-gcs") as pool:
            list(pool.map(lambda item: self._write_json(*item), documents.items()))

    def load_suppressions(self) -> str | None:
        data = self._read("read the suppressions", SUPPRESSIONS)
        return None if data is None else data.decode("utf-8")

    def save_suppressions(self, document: str) -> None:
        self._write(
            "save the suppressions", SUPPRESSIONS, document.encode(), "application/yaml", None
        )

    def claim(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        wanted = list(dict.fromkeys(keys))
        document = {"run": uuid.uuid4().hex, "claimed_at": clock.now().isoformat()}
        data = json.dumps(document, separators=(",", ":")).encode()
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="mutguard-gcs") as pool:
            tries = {
                key: pool.submit(self._create, "claim alerts in the state", claim_name(key), data)
                for key in wanted
            }
        failures = [error for done in tries.values() if (error := done.exception())]
        won = {key for key, done in tries.items() if not done.exception() and done.result()}
        if failures:
            give_back(self, won)  # the run stops here: what it won would hold no one's alert
            raise failures[0]
        return won

    def release(self, keys: Iterable[ClaimKey]) -> None:
        names = [claim_name(key) for key in dict.fromkeys(keys)]
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="mutguard-gcs") as pool:
            list(pool.map(self._delete, names))

    def mark_delivered(self, keys: Iterable[ClaimKey]) -> None:
        data = json.dumps({"delivered_at": clock.now().isoformat()}).encode()
        verb = "mark alerts delivered in the state"
        names = [delivered_name(key) for key in dict.fromkeys(keys)]
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="mutguard-gcs") as pool:
            list(
                pool.map(
                    lambda name: self._write(verb, name, data, "application/json", None), names
                )
            )

    def delivered(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        wanted = list(dict.fromkeys(keys))
        found = self._read_each("read the state", [delivered_name(key) for key in wanted])
        return {key for key, data in zip(wanted, found, strict=True) if data is not None}

    def begin_run(self, run_id: str, parts: int, started_at: datetime.datetime) -> str | None:
        document = {"run": run_id, "parts": parts, "started_at": utc(started_at).isoformat()}
        data = json.dumps(document, separators=(",", ":")).encode()
        # False: recorded already (a retried dispatch), and the first record stands.
        self._create("record the run in the state", run_name(run_id), data)
        return advance_latest(run_id, self._replace_latest)

    def digest_sent(self, run_id: str) -> None:
        mark_sent(run_id, self._latest, self._replace_latest)

    def _latest(self) -> LatestRun | None:
        def download() -> LatestRun | None:
            from google.api_core.exceptions import NotFound

            blob = self._blob(LATEST_RUN)
            try:
                data = blob.download_as_bytes(retry=None, timeout=TIMEOUT_SECONDS)
            except NotFound:
                return None
            return LatestRun.from_dict(json.loads(data), blob.generation)

        return self._run("read the run in the state", download)

    def _replace_latest(self, expected: LatestRun | None, new: LatestRun) -> LatestRun | None:
        """Upload the pointer if its generation is still `expected`'s (0: none)."""
        data = json.dumps(new.to_dict(), separators=(",", ":")).encode()

        def upload() -> bool:
            from google.api_core.exceptions import PreconditionFailed

            try:
                self._blob(LATEST_RUN).upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=0 if expected is None else expected.version,
                    retry=None,
                    timeout=TIMEOUT_SECONDS,
                )
            except PreconditionFailed:
                return False
            return True

        written = self._run("record the run in the state", upload)
        return settle_write(written, new, self._latest, self._replace_latest)

    def finish_part(self, run_id: str, part: int, summary: Mapping[str, Any]) -> None:
        data = json.dumps(summary, separators=(",", ":")).encode()
        self._write_json(part_name(run_id, part), data, "record the run in the state")

    def run_progress(self, run_id: str, every_part: bool = False) -> RunProgress:
        data = self._read("read the run in the state", run_name(run_id))
        if data is None:
            return RunProgress(None, None)
        run = json.loads(data)
        parts = int(run["parts"])
        started_at = datetime.datetime.fromisoformat(run["started_at"])
        numbers = range(1, parts + 1)
        # The names first: the workers of a big run read no summary until every part is there.
        if not every_part and not self._listed_parts(run_id).issuperset(numbers):
            return RunProgress(parts, started_at)
        found = self._read_each(
            "read the run in the state", [part_name(run_id, part) for part in numbers]
        )
        finished = {
            part: json.loads(text)
            for part, text in zip(numbers, found, strict=True)
            if text is not None
        }
        return RunProgress(parts, started_at, finished)

    def _listed_parts(self, run_id: str) -> set[int]:
        """The numbers of the run's parts that have an object, from a listing of their names."""
        folder = self._path(parts_folder(run_id))

        def listing() -> list[str]:
            blobs = self._storage().list_blobs(
                self.bucket,
                prefix=folder,
                fields="items(name),nextPageToken",
                retry=None,
                timeout=TIMEOUT_SECONDS,
            )
            return [blob.name for blob in blobs]

        names = self._run("read the run in the state", listing)
        stems = (name.removeprefix(folder).removesuffix(".json") for name in names)
        return {int(stem) for stem in stems if stem.isdecimal()}

    def _create(self, verb: str, name: str, data: bytes) -> bool:
        """Upload only when no live object has this name (ifGenerationMatch=0): True when
        written. A retry that finds the object its own first try wrote counts as written."""

        def upload() -> bool:
            from google.api_core.exceptions import NotFound, PreconditionFailed

            blob = self._blob(name)
            try:
                blob.upload_from_string(
                    data,
                    content_type="application/json",
                    if_generation_match=0,
                    retry=None,
                    timeout=TIMEOUT_SECONDS,
                )
            except PreconditionFailed:
                try:
                    held: bytes = blob.download_as_bytes(retry=None, timeout=TIMEOUT_SECONDS)
                except NotFound:  # released in between: still not this run's
                    return False
                return held == data
            return True

        return self._run(verb, upload)

    def _delete(self, name: str) -> None:
        def delete() -> None:
            from google.api_core.exceptions import NotFound

            with contextlib.suppress(NotFound):  # gone already (a retry, a lifecycle rule)
                self._blob(name).delete(retry=None, timeout=TIMEOUT_SECONDS)

        self._run("release claims in the state", delete)

    def _read_each(self, verb: str, names: list[str]) -> list[bytes | None]:
        """Each object's content (None where there is none), WORKERS read at a time."""
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="mutguard-gcs") as pool:
            return list(pool.map(lambda name: self._read(verb, name), names))

    def _read(self, verb: str, name: str) -> bytes | None:
        """The object's content (decompressed), or None when there is no such object."""

        def download() -> bytes | None:
            from google.api_core.exceptions import NotFound

            try:
                data: bytes = self._blob(name).download_as_bytes(
                    retry=None, timeout=TIMEOUT_SECONDS
                )
            except NotFound:
                return None
            return data

        return self._run(verb, download)

    def _write_json(self, name: str, data: bytes, verb: str = "save the state") -> None:
        if len(data) > GZIP_OVER:
            self._write(verb, name, gzip.compress(data), "application/json", "gzip")
        else:
            self._write(verb, name, data, "application/json", None)

    def _write(
        self, verb: str, name: str, data: bytes, content_type: str, encoding: str | None
    ) -> None:
        def upload() -> None:
            blob = self._blob(name)
            blob.content_encoding = encoding
            blob.upload_from_string(
                data, content_type=content_type, retry=None, timeout=TIMEOUT_SECONDS
            )

        self._run(verb, upload)

    def _run(self, verb: str, action: Callable[[], T]) -> T:
        try:
            return call_with_retry(lambda: self._attempt(action), self._retry)
        except DeliveryError as err:  # its message names the store already
            raise StoreError(f"could not {verb}: {err}") from None

    def _attempt(self, action: Callable[[], T]) -> T:
        try:
            return action()
        except Exception as err:  # whatever the client raises, the error must name the store
            raise failure(self._what, err) from None

    def _blob(self, name: str) -> Any:
        return self._storage().bucket(self.bucket).blob(self._path(name))

    def _path(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _storage(self) -> Any:
        # One client for the worker threads, as the library's transfer_manager shares one.
        with self._client_lock:
            if self._client is None:
                from google.cloud import storage

                # project=None: objects in a named bucket need no project, so Application
                # Default Credentials without one (a developer's gcloud login) work too.
                self._client = storage.Client(project=None)
            return self._client


def failure(what: str, err: Exception) -> DeliveryError:
    """A client library failure as RetryableError or DeliveryError, its message naming `what`."""
    import requests
    from google.api_core.exceptions import GoogleAPICallError
    from google.auth.exceptions import DefaultCredentialsError, TransportError
    from google.cloud.storage.exceptions import DataCorruption

    if isinstance(err, GoogleAPICallError):
        message = f"{what} answered HTTP {err.code}: {google_message(err)}"
        if err.code in RETRYABLE_STATUS:
            return RetryableError(message)
        return DeliveryError(message)
    if isinstance(err, DefaultCredentialsError):
        return DeliveryError(f"{what}: {NO_CREDENTIALS}")
    if isinstance(err, DataCorruption):
        return RetryableError(f"{what}: the download did not match its checksum")
    broken = (
        requests.ConnectionError,
        requests.Timeout,
        requests.exceptions.ChunkedEncodingError,
        TransportError,
        ConnectionError,
    )
    if isinstance(err, broken):
        return RetryableError(f"{what}: unreachable: {truncate(str(err), 300)}")
    return DeliveryError(f"{what}: {truncate(str(err) or type(err).__name__, 300)}")


def google_message(err: Any) -> str:
    """The `error.message` of Google's JSON error body; the exception's own text (which quotes
    the whole body for media requests) only when the body has none."""
    try:
        message = err.response.json()["error"]["message"]
    except (AttributeError, KeyError, TypeError, ValueError):
        message = err.message
    return truncate(str(message), 300)


def open_store(location: str) -> GcsStateStore:
    return GcsStateStore(location)
