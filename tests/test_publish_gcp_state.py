"""The GCP side of publishing for scheduled runs: the Cloud Storage state store and GCP Secret
Manager secrets, against real local servers. The real google-cloud-storage client reaches
tests/servers/gcs.py through STORAGE_EMULATOR_HOST; the real SecretManagerServiceClient reaches
tests/servers/secretmanager.py (gRPC) through MUTGUARD_GCP_SECRETMANAGER_ENDPOINT.

Retry delays never pass in real time: the policy's sleep records the requested waits.
"""

import base64
import datetime
import hmac
import json
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from hashlib import sha256
from importlib import resources
from pathlib import Path

import grpc
import pytest
from google.api_core.client_logging import StructuredLogFormatter
from google.cloud import storage

from mutguard.errors import InputError, StoreError
from mutguard.models import Report, Severity, Status
from mutguard.providers import snapshot
from mutguard.publish import (
    Redactor,
    RetryPolicy,
    SecretRefs,
    SinkContext,
    SinkResult,
    SinkSpec,
    build_sinks,
    publish,
)
from mutguard.publish.secrets.gcp_secrets import TRANSPORT_LOGGER, WITHHELD
from mutguard.publish.stores import open_store
from mutguard.publish.stores.gcs import GcsStateStore, object_name
from mutguard.scan import build_report
from mutguard.state import ClusterState, FindingState, Mut, changes
from mutguard.suppressions import stored_suppressions

from servers.chat import ChatServer
from servers.gcs import BUCKET, GcsServer
from servers.secretmanager import SecretManagerServer

GENERATED_AT = datetime.datetime(2026, 3, 1, 8, 0, tzinfo=datetime.UTC)
PREFIX = "mutguard/prod"
STORE = f"gcs:{BUCKET}/{PREFIX}"
DOWNLOADS = rf"/download/storage/v1/b/{BUCKET}/o/.*"
UPLOADS = rf"/upload/storage/v1/b/{BUCKET}/o"
HOOK_SECRET = "projects/mutguard-test/secrets/webhook-url"
KEY_SECRET = "projects/mutguard-test/secrets/webhook-key"
HOOK_PATH = "/hook/gcpHookSecret0123456789"
HMAC_KEY = "whsec-from-gcp-secret-manager-0123"
SLACK_PATH = "/services/T0GCP/B0GCP/fromSecretManager0123"
SUPPRESSIONS = """\
suppressions:
  - check_id: eks.endpoint.public_unrestricted
    owner: platform@example.com
    reason: the endpoint is reached through an allow-listing proxy
    expires: 2099-12-31
"""


class Waits:
    """Stands in for time.sleep: records each wait, never blocks."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.seconds.append(seconds)


def policy(waits: Waits) -> RetryPolicy:
    return RetryPolicy(sleep=waits.sleep, jitter=lambda delay: delay)


@cache
def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), GENERATED_AT)


def state_with(count: int) -> ClusterState:
    """`count` findings on workloads with hash-like names, which compress about as badly as
    real pod names do."""
    findings = {
        (f"k8s.workload.check_{i % 40:02d}", f"Pod team/{sha256(str(i).encode()).hexdigest()}"): (
            FindingState(Status.FAIL if i % 2 else Status.PASS, Severity.HIGH, i % 7 == 0)
        )
        for i in range(count)
    }
    return ClusterState(readable=True, mut=Mut(1, 2, None), findings=findings)


def metadata(name: str) -> storage.Blob:
    """An object's metadata as an operator's client sees it."""
    blob = storage.Client(project=None).bucket(BUCKET).get_blob(name)
    assert blob is not None, name
    return blob


# --- The Cloud Storage state store --------------------------------------------------------


def test_gcs_store_round_trips_small_odd_and_large_states(gcs: GcsServer):
    store = open_store(STORE)
    assert isinstance(store, GcsStateStore) and store.name == STORE
    odd_key = "kubernetes::ctx/with#odd?chars%:dev\\cluster [eu]*"
    states = {
        "eks:111111111111:eu-west-1:payments-legacy": state_with(3),
        odd_key: ClusterState(readable=False, mut=Mut(None, None, None)),
        "gke:shop-prod:europe-west1:huge": state_with(6000),  # 1 MB of JSON: compressed
    }
    assert store.load(states) == {}  # nothing saved yet: the first run
    store.save(states)
    assert store.load([*states, "aks:sub:westeurope:never-saved"]) == states

    assert object_name(odd_key) == (
        "clusters/kubernetes::ctx%2Fwith%23odd%3Fchars%25:dev%5Ccluster%20%5Beu%5D%2A.json"
    )
    assert gcs.names(BUCKET) == sorted(f"{PREFIX}/{object_name(key)}" for key in states)
    small = metadata(f"{PREFIX}/{object_name('eks:111111111111:eu-west-1:payments-legacy')}")
    assert (small.content_type, small.content_encoding) == ("application/json", None)
    document = json.loads(small.download_as_bytes())  # readable as it is
    assert document["cluster"] == "eks:111111111111:eu-west-1:payments-legacy"
    assert document["saved_at"].endswith("+00:00") and document["state"]["mut_workload"] == 2
    huge = metadata(f"{PREFIX}/{object_name('gke:shop-prod:europe-west1:huge')}")
    assert (huge.content_type, huge.content_encoding) == ("application/json", "gzip")
    assert huge.size < 400_000  # stored compressed, yet every client reads JSON
    assert json.loads(huge.download_as_bytes())["state"]["mut"] == 1

    # A save replaces the clusters it names (a new generation) and keeps the others.
    before = metadata(f"{PREFIX}/{object_name(odd_key)}").generation
    store.save({odd_key: state_with(1)})
    again = open_store(STORE).load(states)
    assert again[odd_key] == state_with(1) and len(again) == 3
    assert metadata(f"{PREFIX}/{object_name(odd_key)}").generation > before


def test_gcs_store_keeps_the_suppressions_document(gcs: GcsServer):
    store = open_store(f"gcs:{BUCKET}")  # no prefix: objects at the top of the bucket
    assert store.load_suppressions() is None and stored_suppressions(store) == []
    store.save_suppressions("suppressions: []\n")
    store.save_suppressions(SUPPRESSIONS)  # replaces the first
    assert store.load_suppressions() == SUPPRESSIONS
    (kept,) = stored_suppressions(store)
    assert (kept.check_id, kept.owner) == (
        "eks.endpoint.public_unrestricted",
        "platform@example.com",
    )
    assert metadata("suppressions.yaml").content_type == "application/yaml"
    assert gcs.names(BUCKET) == ["suppressions.yaml"]


def test_gcs_store_retries_server_errors_then_reads_and_saves(gcs: GcsServer):
    waits = Waits()
    store = GcsStateStore(f"{BUCKET}/{PREFIX}", retry=policy(waits))
    gcs.fail("POST", UPLOADS, 429, times=1)
    store.save({"eks:1:eu-west-1:shop": state_with(2)})
    assert waits.seconds == [0.5]  # the run's backoff, not the library's

    gcs.fail("GET", DOWNLOADS, 503, times=2)
    assert store.load(["eks:1:eu-west-1:shop"]) == {"eks:1:eu-west-1:shop": state_with(2)}
    assert waits.seconds == [0.5, 0.5, 1.0]
    assert gcs.requests_seen("GET", DOWNLOADS) == 3
    assert gcs.requests_seen("POST", UPLOADS) == 2


def test_gcs_store_failures_name_the_store(gcs: GcsServer):
    waits = Waits()
    store = GcsStateStore(f"{BUCKET}/{PREFIX}", retry=policy(waits))
    gcs.fail("GET", DOWNLOADS, 403)
    with pytest.raises(StoreError) as denied:
        store.load(["eks:1:eu-west-1:shop"])
    assert str(denied.value) == (
        f"could not read the state: state store {STORE} answered HTTP 403: Anonymous caller does "
        "not have storage.objects.get access to the Google Cloud Storage object. Permission "
        "'storage.objects.get' denied on resource (or it may not exist)."
    )
    assert waits.seconds == [] and gcs.requests_seen("GET", DOWNLOADS) == 1  # not retried
    with pytest.raises(StoreError, match=f"could not read the suppressions: state store {STORE} "):
        store.load_suppressions()

    gcs.fail("POST", UPLOADS, 503)
    with pytest.raises(StoreError) as down:
        store.save({"eks:1:eu-west-1:shop": state_with(1)})
    assert str(down.value) == (
        f"could not save the state: state store {STORE} answered HTTP 503: We encountered an "
        "internal error. Please try again. (gave up after 4 attempts)"
    )
    assert waits.seconds == [0.5, 1.0, 2.0]

    # A bucket that does not exist holds no state, and the first save says so.
    missing = GcsStateStore("no-such-bucket", retry=policy(Waits()))
    assert missing.load(["eks:1:eu-west-1:shop"]) == {}
    with pytest.raises(StoreError) as no_bucket:
        missing.save({"eks:1:eu-west-1:shop": state_with(1)})
    assert str(no_bucket.value) == (
        "could not save the state: state store gcs:no-such-bucket answered HTTP 404: The "
        "specified bucket does not exist."
    )


def test_the_gcs_fake_creates_an_object_only_once_under_if_generation_match_0(gcs: GcsServer):
    """As GCS: `ifGenerationMatch=0` writes only when there is no live object (412 otherwise),
    checked atomically; DELETE removes an object (404 when there is none)."""
    from google.api_core.exceptions import NotFound, PreconditionFailed

    bucket = storage.Client(project=None).bucket(BUCKET)
    bucket.blob("claims/a").upload_from_string(b"first", if_generation_match=0)
    with pytest.raises(PreconditionFailed) as taken:
        bucket.blob("claims/a").upload_from_string(b"second", if_generation_match=0)
    assert taken.value.code == 412 and "pre-conditions you specified did not hold" in str(
        taken.value
    )
    generation = metadata("claims/a").generation
    bucket.blob("claims/a").upload_from_string(b"third", if_generation_match=generation)
    assert bucket.blob("claims/a").download_as_bytes() == b"third"
    bucket.blob("claims/a").delete()
    with pytest.raises(NotFound):
        bucket.blob("claims/a").delete()
    bucket.blob("claims/a").upload_from_string(b"again", if_generation_match=0)

    def create(number: int) -> bool:
        try:
            bucket.blob("claims/race").upload_from_string(
                str(number).encode(), if_generation_match=0
            )
        except PreconditionFailed:
            return False
        return True

    with ThreadPoolExecutor(16) as pool:  # many uploads of one name at once: one is written
        assert sum(pool.map(create, range(64))) == 1


def test_gcs_store_claims_are_objects_created_once(gcs: GcsServer):
    store = GcsStateStore(f"{BUCKET}/{PREFIX}", retry=policy(Waits()))
    one = ("eks:1:eu-west-1:shop/odd#key", "2026-03-01T08:00:00+00:00/0123456789abcdef")
    two = ("digest", "2026-03-01T08:00:00+00:00/fedcba9876543210")
    assert store.claim([one, two]) == {one, two}
    assert GcsStateStore(f"{BUCKET}/{PREFIX}").claim([one, two]) == set()
    assert gcs.names(BUCKET) == [
        f"{PREFIX}/claims/2026-03-01T08:00:00%2B00:00%2F0123456789abcdef/"
        "eks:1:eu-west-1:shop%2Fodd%23key",
        f"{PREFIX}/claims/2026-03-01T08:00:00%2B00:00%2Ffedcba9876543210/digest",
    ]
    store.release([one, one])
    assert store.claim([one]) == {one}

    # One claim of several refused: the run stops, giving back the claims it did win.
    keys = [(f"eks:1:eu-west-1:c{i}", "2026-03-01T08:00:00+00:00/1") for i in range(3)]
    gcs.fail("POST", UPLOADS, 403, times=1)
    with pytest.raises(StoreError):
        GcsStateStore(f"{BUCKET}/{PREFIX}", retry=policy(Waits())).claim(keys)
    assert store.claim(keys) == set(keys)

    gcs.fail("POST", UPLOADS, 403)  # from now on
    with pytest.raises(
        StoreError,
        match=f"could not claim alerts in the state: state store {STORE} answered HTTP 403",
    ):
        store.claim([("eks:1:eu-west-1:other", "2026-03-01T08:00:00+00:00/0")])


def test_an_unreachable_gcs_is_retried_then_names_the_store(monkeypatch: pytest.MonkeyPatch):
    with GcsServer() as gone:
        url = gone.url
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)  # a port nothing listens on any more
    waits = Waits()
    with pytest.raises(StoreError) as caught:
        GcsStateStore(BUCKET, retry=policy(waits)).load(["eks:1:eu-west-1:shop"])
    message = str(caught.value)
    assert message.startswith(f"could not read the state: state store gcs:{BUCKET}: unreachable: ")
    assert message.endswith("(gave up after 4 attempts)") and len(waits.seconds) == 3


def test_gcs_store_locations_are_checked():
    for spec in ("gcs:", "gcs:Upper-Case", "gcs:a", "gcs:-starts-with-a-dash/x"):
        with pytest.raises(InputError, match="needs a bucket name"):  # a usage error: exit 2
            open_store(spec)
    assert GcsStateStore("bucket/a/b/").name == "gcs:bucket/a/b"


# --- The command line: state and suppressions in Cloud Storage ----------------------------


def mutguard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mutguard.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True)


def failing_checks(report: Report, cluster: str) -> list[str]:
    found = next(c for c in report.clusters if c.name == cluster)
    return sorted({f.check_id for f in found.findings if f.status is Status.FAIL})


def test_the_cli_keeps_its_state_and_suppressions_in_gcs_and_its_secrets_in_secret_manager(
    gcs: GcsServer, secret_manager: SecretManagerServer, tmp_path: Path
):
    with ChatServer() as chat:
        secret_manager.add_version(HOOK_SECRET, json.dumps({"url": chat.url + HOOK_PATH}))
        secret_manager.add_version(KEY_SECRET, HMAC_KEY)
        env = {
            **os.environ,
            "MUTGUARD_STATE_FILE": str(tmp_path / "unused.sqlite3"),
        }
        config = tmp_path / "sinks.yaml"
        config.write_text(
            "sinks:\n  - kind: webhook\n    options:\n"
            f"      url_env: gcp-secretmanager:{HOOK_SECRET}#url\n"
            f"      secret_env: gcp-secretmanager:{KEY_SECRET}/versions/1\n"
        )
        report_file = tmp_path / "report.json"
        report_file.write_text(demo_report().model_dump_json())
        # Every failing check of shop-staging is an accepted risk there: nothing to tell.
        rules = tmp_path / "suppressions.yaml"
        rules.write_text(
            "suppressions:\n"
            + "".join(
                f"  - {{check_id: {check}, cluster: shop-staging, owner: sre@example.com, "
                "reason: staging only, expires: 2099-12-31}\n"
                for check in failing_checks(demo_report(), "shop-staging")
            )
        )
        store = ("--state-store", STORE)

        pushed = mutguard("suppressions", "push", str(rules), *store, env=env)
        assert pushed.returncode == 0, pushed.stderr
        shown = mutguard("suppressions", "show", *store, env=env)
        assert shown.stdout == rules.read_text()

        publish_args = ("publish", str(report_file), "--to", "webhook", "--publish-config")
        first = mutguard(*publish_args, str(config), *store, env=env)
        assert first.returncode == 0, first.stderr
        assert "publish webhook: sent 5 message(s)" in first.stderr  # 6 with news, less staging
        sent = chat.delivered(HOOK_PATH)
        assert "shop-staging" not in {json.loads(r.body)["clusters"][0]["name"] for r in sent}
        for request in sent:
            timestamp = request.headers["x-mutguard-timestamp"]
            signed = hmac.new(HMAC_KEY.encode(), f"{timestamp}.".encode() + request.body, sha256)
            assert request.headers["x-mutguard-signature-256"] == "sha256=" + signed.hexdigest()
        clusters = [n for n in gcs.names(BUCKET) if n.startswith(f"{PREFIX}/clusters/")]
        assert len(clusters) == len(demo_report().clusters)  # every cluster, news or not
        assert not (tmp_path / "unused.sqlite3").exists()

        second = mutguard(*publish_args, str(config), *store, env=env)
        assert second.returncode == 0, second.stderr
        assert "publish webhook: sent 0 message(s)" in second.stderr
        assert len(chat.delivered(HOOK_PATH)) == 5
        assert HMAC_KEY not in first.stderr + second.stderr
        assert HOOK_PATH not in first.stderr + second.stderr


# --- Secrets from GCP Secret Manager ------------------------------------------------------


def context(waits: Waits | None = None, env: dict[str, str] | None = None) -> SinkContext:
    redactor = Redactor()
    return SinkContext(SecretRefs(redactor, env or {}), redactor, policy(waits or Waits()))


def send(specs: list[SinkSpec], ctx: SinkContext) -> dict[str, SinkResult]:
    report = demo_report()
    results = publish(report, changes({}, report), build_sinks(specs, ctx), ctx)
    return {r.sink: r for r in results}


def webhook(url: str = f"gcp-secretmanager:{HOOK_SECRET}#url") -> SinkSpec:
    return SinkSpec(
        "webhook", options={"url_env": url, "secret_env": f"gcp-secretmanager:{KEY_SECRET}"}
    )


def test_slack_and_the_webhook_read_their_secrets_from_secret_manager(
    secret_manager: SecretManagerServer, chat: ChatServer, caplog: pytest.LogCaptureFixture
):
    slack_secret = "projects/mutguard-test/secrets/slack-webhook"
    secret_manager.add_version(slack_secret, "https://hooks.slack.com/old-and-rotated")
    secret_manager.add_version(slack_secret, chat.url + SLACK_PATH)  # latest
    secret_manager.add_version(HOOK_SECRET, json.dumps({"url": chat.url + HOOK_PATH}))
    secret_manager.add_version(KEY_SECRET, HMAC_KEY)
    # What GOOGLE_SDK_PYTHON_LOGGING_SCOPE does: the client library's own logger, at DEBUG.
    transport_logger = logging.getLogger(TRANSPORT_LOGGER)
    transport_logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    try:
        slack = SinkSpec("slack", options={"webhook_url_env": f"gcp-secretmanager:{slack_secret}"})
        results = send([slack, webhook()], context())
    finally:
        transport_logger.removeHandler(caplog.handler)

    assert (results["slack"].ok, results["slack"].sent) == (True, 6)
    assert (results["webhook"].ok, results["webhook"].sent) == (True, 6)
    assert len(chat.delivered(SLACK_PATH)) == 6 and len(chat.delivered(HOOK_PATH)) == 6
    request = chat.delivered(HOOK_PATH)[0]
    signed = hmac.new(
        HMAC_KEY.encode(),
        f"{request.headers['x-mutguard-timestamp']}.".encode() + request.body,
        sha256,
    )
    assert request.headers["x-mutguard-signature-256"] == "sha256=" + signed.hexdigest()
    # Each secret read once for the run, though every message needs it.
    assert sorted(secret_manager.requests) == sorted(
        f"{name}/versions/latest" for name in (slack_secret, HOOK_SECRET, KEY_SECRET)
    )

    responses = [r for r in caplog.records if r.name == TRANSPORT_LOGGER and hasattr(r, "response")]
    assert responses and {r.response["payload"] for r in responses} == {WITHHELD}
    structured = "\n".join(StructuredLogFormatter().format(r) for r in caplog.records)
    for value in (HMAC_KEY, chat.url + SLACK_PATH, HOOK_PATH):
        assert value not in caplog.text and value not in structured
        assert base64.b64encode(value.encode()).decode() not in structured


def test_an_absent_secret_fails_that_sink_naming_it_and_the_others_deliver(
    secret_manager: SecretManagerServer, chat: ChatServer
):
    secret_manager.add_version(KEY_SECRET, HMAC_KEY)
    absent = SinkSpec(
        "webhook",
        name="absent",
        options={"url_env": "gcp-secretmanager:projects/mutguard-test/secrets/absent"},
    )
    env = {
        "MUTGUARD_WEBHOOK_URL": chat.url + "/hook/fromTheEnvironment0123",
        "MUTGUARD_WEBHOOK_SECRET": HMAC_KEY,
    }
    results = send([absent, SinkSpec("webhook")], context(env=env))
    assert results["absent"].error == (
        "GCP Secret Manager secret projects/mutguard-test/secrets/absent not found or has no "
        "versions"
    )
    assert (results["webhook"].ok, results["webhook"].sent) == (True, 6)
    assert len(chat.requests("/hook/")) == 6


def test_refused_secrets_fail_the_sink_at_once_naming_the_secret_and_status(
    secret_manager: SecretManagerServer, chat: ChatServer
):
    secret_manager.add_version(HOOK_SECRET, json.dumps({"url": chat.url + HOOK_PATH}))
    secret_manager.add_version(HOOK_SECRET, json.dumps({"url": "rotated"}), state="DISABLED")
    secret_manager.add_version(KEY_SECRET, HMAC_KEY)
    secret_manager.deny(KEY_SECRET)
    waits = Waits()
    results = send([webhook()], context(waits))
    assert results["webhook"].error == (
        f"GCP Secret Manager secret {HOOK_SECRET} cannot be read: Secret Version "
        f"[{HOOK_SECRET}/versions/2] is in DISABLED state."
    )
    pinned = webhook(f"gcp-secretmanager:{HOOK_SECRET}/versions/1#url")
    results = send([pinned], context(waits))
    assert results["webhook"].error == (
        f"GCP Secret Manager secret {KEY_SECRET} answered PERMISSION_DENIED: Permission "
        f"'secretmanager.versions.access' denied for resource '{KEY_SECRET}/versions/latest' (or "
        "it may not exist)."
    )
    assert waits.seconds == [] and len(secret_manager.requests) == 3  # none retried
    assert chat.requests("/") == []


def test_an_unavailable_or_garbled_answer_is_retried_then_delivers(
    secret_manager: SecretManagerServer, chat: ChatServer
):
    secret_manager.add_version(HOOK_SECRET, json.dumps({"url": chat.url + HOOK_PATH}))
    secret_manager.add_version(KEY_SECRET, HMAC_KEY)
    secret_manager.fail(grpc.StatusCode.UNAVAILABLE, times=1)
    secret_manager.corrupt(times=1)  # the next answer's CRC32C does not match its data
    waits = Waits()
    result = send([webhook()], context(waits))["webhook"]
    assert (result.ok, result.sent) == (True, 6)
    assert waits.seconds == [0.5, 1.0]  # the dispatcher's backoff, not the library's
    assert len(secret_manager.requests) == 4  # 2 failed reads, then each secret once


def test_secret_manager_references_that_cannot_be_resolved_say_why(
    secret_manager: SecretManagerServer,
):
    secret_manager.add_version("projects/p/secrets/plain", "https://hooks.example.com/T0/value")
    secret_manager.add_version("projects/p/secrets/json", json.dumps({"url": "https://x", "n": 1}))
    secret_manager.add_version("projects/p/secrets/blank", "  \n")
    secret_manager.add_version("projects/p/secrets/binary", b"\xff\xfe\x00")
    secret_manager.add_secret("projects/p/secrets/no-versions")
    refs = SecretRefs(Redactor(), {})
    problems = {
        "projects/p/secrets/plain#url": "GCP Secret Manager secret projects/p/secrets/plain is "
        "not a JSON object, so has no url",
        "projects/p/secrets/json#n": "GCP Secret Manager secret projects/p/secrets/json has no "
        "string value for key n",
        "projects/p/secrets/blank": "GCP Secret Manager secret projects/p/secrets/blank is empty",
        "projects/p/secrets/no-versions": "GCP Secret Manager secret "
        "projects/p/secrets/no-versions not found or has no versions",
        "projects/p/secrets/plain/versions/7": "GCP Secret Manager secret "
        "projects/p/secrets/plain/versions/7 not found or has no versions",
        "projects/p/secrets/binary": "GCP Secret Manager secret projects/p/secrets/binary holds "
        "binary data; mutguard needs UTF-8 text",
        "prod/mutguard/hook": "GCP Secret Manager reference prod/mutguard/hook is not "
        "projects/PROJECT/secrets/SECRET[/versions/VERSION]",
    }
    for reference, message in problems.items():
        with pytest.raises(Exception) as caught:
            refs.get(f"gcp-secretmanager:{reference}")
        assert str(caught.value) == message


def test_values_from_secret_manager_are_redacted_from_sink_errors(
    secret_manager: SecretManagerServer, chat: ChatServer, caplog: pytest.LogCaptureFixture
):
    secret_manager.add_version(HOOK_SECRET, json.dumps({"url": chat.url + HOOK_PATH}))
    secret_manager.add_version(KEY_SECRET, HMAC_KEY)
    chat.fail("/hook/", 400, times=1, body="no such hook: " + HOOK_PATH)
    caplog.set_level(logging.DEBUG)
    result = send([webhook()], context())["webhook"]
    assert not result.ok and result.error.startswith("webhook webhook answered HTTP 400: ")
    assert "***" in result.error
    assert HOOK_PATH not in result.error and HOOK_PATH.strip("/") not in result.error
    assert HOOK_PATH not in caplog.text and HMAC_KEY not in caplog.text
