"""The functions' report store: each published scan's JSON and HTML report kept in S3, Cloud
Storage or Azure Blob Storage, and the link the alerts carry.

Real local servers only: moto_server (S3, KMS), the Cloud Storage fake (tests/servers/gcs.py)
and Azurite. Links are fetched with plain HTTP GETs, as a browser opening the alert would.
moto checks that a request is signed but not the signature itself, and the Cloud Storage fake
checks neither, so the GCS signed-link mode is not exercised here (it needs a signing
credential): its console-link mode and the stored objects are. Azurite checks the SAS.
"""

import datetime
import json
import logging
import re
import urllib.error
import urllib.request
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

import boto3
import pytest
from azure.storage.blob import BlobServiceClient

from mutguard.errors import ConfigurationError
from mutguard.functions.aws_lambda import worker
from mutguard.functions.runtime import ForgetfulStore, Settings
from mutguard.models import Report
from mutguard.providers import snapshot
from mutguard.publish.base import ReportLinks
from mutguard.publish.pipeline import SinkSpec, run_publishing
from mutguard.publish.reports import (
    LinkSetting,
    ReportArchiveError,
    group_label,
    open_archive,
    parse_link_setting,
    store_report,
)
from mutguard.publish.reports.azure_blob import AzureBlobReportArchive
from mutguard.publish.reports.gcs import GcsReportArchive
from mutguard.publish.reports.s3 import S3ReportArchive
from mutguard.render import render
from mutguard.scan import build_report

from servers.aws import DEFAULT_ACCOUNT, AwsFakes
from servers.azurite import ACCOUNT, ACCOUNT_KEY, Azurite
from servers.chat import ChatServer
from servers.gcs import BUCKET, GcsServer

DEMO = Path(str(resources.files("mutguard") / "demo"))
SCANNED_AT = datetime.datetime(2026, 3, 1, 6, 30, 5, tzinfo=datetime.UTC)
REPORTS = "mutguard-reports"
GROUP = ("eks", DEFAULT_ACCOUNT, "eu-west-1")
OBJECT = re.compile(
    r"^runs/2026/03/01/063005Z_eks_123456789012_eu-west-1_[0-9a-f]{8}/report\.(json|html)$"
)


def a_report() -> Report:
    return build_report(snapshot.read(DEMO), SCANNED_AT)


def get(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read(), answer.headers["Content-Type"]


def refused(url: str) -> int:
    with pytest.raises(urllib.error.HTTPError) as err:
        get(url)
    return err.value.code


# --- S3 -------------------------------------------------------------------------------------


@pytest.fixture
def s3(aws: AwsFakes) -> Any:
    client = boto3.client("s3")
    client.create_bucket(Bucket=REPORTS)
    return client


def test_s3_stores_both_reports_encrypted_and_the_signed_link_reads_the_html(s3: Any):
    report = a_report()
    stored = store_report(
        report, S3ReportArchive(f"{REPORTS}/runs", None), LinkSetting(3600), group_label([GROUP])
    )

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=REPORTS)["Contents"])
    assert len(keys) == 2 and all(OBJECT.match(key) for key in keys)
    assert stored.html_location == f"s3://{REPORTS}/{keys[0]}"
    assert stored.json_location == f"s3://{REPORTS}/{keys[1]}"
    html = s3.head_object(Bucket=REPORTS, Key=keys[0])
    assert (html["ContentType"], html["ServerSideEncryption"]) == (
        "text/html; charset=utf-8",
        "AES256",
    )
    assert s3.head_object(Bucket=REPORTS, Key=keys[1])["ContentType"] == "application/json"

    assert stored.links.signed
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in stored.links.html
    assert "X-Amz-Expires=3600" in stored.links.html
    body, content_type = get(stored.links.html)
    assert body == s3.get_object(Bucket=REPORTS, Key=keys[0])["Body"].read()
    assert body == render(report, "html").encode()
    assert content_type == "text/html; charset=utf-8"
    assert json.loads(get(stored.links.json)[0])["generated_at"].startswith("2026-03-01T06:30:05")
    # Without the signature the bucket is private.
    assert refused(stored.links.html.split("?")[0]) == 403


def test_s3_asks_for_sse_kms_with_the_configured_key(s3: Any):
    key = boto3.client("kms").create_key()["KeyMetadata"]["Arn"]
    stored = store_report(
        a_report(), open_archive(f"s3:{REPORTS}", key), LinkSetting(600), group_label([GROUP])
    )
    name = stored.html_location.removeprefix(f"s3://{REPORTS}/")
    head = s3.head_object(Bucket=REPORTS, Key=name)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", key)


def test_s3_console_links_carry_no_signature(s3: Any):
    stored = store_report(
        a_report(), S3ReportArchive(REPORTS, None), LinkSetting(None), group_label([GROUP])
    )
    assert not stored.links.signed
    name = stored.html_location.removeprefix(f"s3://{REPORTS}/")
    assert stored.links.html == (
        f"https://console.aws.amazon.com/s3/object/{REPORTS}?region=us-east-1"
        f"&prefix={name.replace('/', '%2F')}"
    )
    assert "Signature" not in stored.links.json


def test_a_missing_bucket_is_one_error_naming_the_store(aws: AwsFakes):
    archive = S3ReportArchive("no-such-bucket/runs", None)
    with pytest.raises(ReportArchiveError, match=r"s3:no-such-bucket/runs: NoSuchBucket"):
        store_report(a_report(), archive, LinkSetting(), "g")


# --- Cloud Storage ----------------------------------------------------------------------------


def test_gcs_stores_both_reports_and_links_to_the_console(gcs: GcsServer):
    report = a_report()
    stored = store_report(
        report, GcsReportArchive(f"{BUCKET}/runs", None), LinkSetting(None), group_label([GROUP])
    )
    names = sorted(gcs.names(BUCKET))
    assert len(names) == 2 and all(OBJECT.match(name) for name in names)
    html, json_report = (gcs.stored(BUCKET, name) for name in names)
    assert html is not None and json_report is not None
    assert (html.data, html.content_type) == (
        render(report, "html").encode(),
        "text/html; charset=utf-8",
    )
    assert (json_report.data, json_report.content_type) == (
        render(report, "json").encode(),
        "application/json",
    )
    assert stored.html_location == f"gs://{BUCKET}/{names[0]}"
    assert stored.links.html == (
        f"https://console.cloud.google.com/storage/browser/_details/{BUCKET}/{names[0]}"
    )


def test_gcs_takes_no_per_object_kms_key():
    with pytest.raises(Exception, match="MUTGUARD_REPORT_STORE: a KMS key is set for S3 only"):
        open_archive(f"gcs:{BUCKET}", "projects/p/locations/l/keyRings/r/cryptoKeys/k")


# --- Azure Blob Storage -----------------------------------------------------------------------


@pytest.fixture
def container(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh private container; the account key comes from the connection string, as it
    would from an app setting, so a link is a service SAS signed with it."""
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={azurite.blob_url};"
    )
    monkeypatch.setenv("MUTGUARD_AZURE_STORAGE_CONNECTION_STRING", connection)
    name = f"reports-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(connection).create_container(name)
    return f"{azurite.blob_url}/{name}"


def test_azure_blob_stores_both_reports_and_the_sas_link_reads_them(container: str):
    report = a_report()
    archive = AzureBlobReportArchive(f"{container}/runs", None)
    stored = store_report(report, archive, LinkSetting(900), group_label([GROUP]))

    assert stored.html_location.startswith(f"{container}/runs/2026/03/01/063005Z_eks_")
    body, content_type = get(stored.links.html)
    assert (body, content_type) == (render(report, "html").encode(), "text/html; charset=utf-8")
    assert get(stored.links.json) == (render(report, "json").encode(), "application/json")
    assert "sp=r" in stored.links.html  # read only
    # Without the SAS, or with a SAS that does not match, the private container answers 403.
    assert refused(stored.html_location) == 403
    tampered = re.sub(r"sig=[^&]+", "sig=AAAA", stored.links.html)
    assert refused(tampered) == 403


def test_azure_blob_never_overwrites_a_stored_report(container: str):
    archive = AzureBlobReportArchive(container, None)
    archive.put("one/report.json", b"{}", "application/json")
    with pytest.raises(ReportArchiveError, match="409 BlobAlreadyExists"):
        archive.put("one/report.json", b"[]", "application/json")


# --- Settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["bucket/prefix", "ftp:bucket?sig=secret", "s3:", "s3:/", "blob:https://a.example/c"],
)
def test_a_bad_report_store_is_one_line_naming_the_variable(value: str):
    with pytest.raises(ConfigurationError) as err:
        Settings.from_env({"MUTGUARD_REPORT_STORE": value})
    message = str(err.value)
    assert message.startswith("MUTGUARD_REPORT_STORE must be one of s3:... | gcs:...")
    assert "\n" not in message
    assert "secret" not in message


@pytest.mark.parametrize("value", ["59", "604801", "1h", "-5", "signed"])
def test_a_bad_link_lifetime_names_the_variable(value: str):
    environ = {"MUTGUARD_REPORT_STORE": f"s3:{REPORTS}", "MUTGUARD_REPORT_LINK_TTL": value}
    with pytest.raises(ConfigurationError, match=r"^MUTGUARD_REPORT_LINK_TTL must be 'console'"):
        Settings.from_env(environ)


def test_link_lifetime_default_and_console():
    assert parse_link_setting(None) == LinkSetting(24 * 3600)
    assert parse_link_setting("604800") == LinkSetting(604800)
    assert parse_link_setting("console") == LinkSetting(None)
    assert Settings.from_env({}).report_store is None


def test_a_bad_location_is_named_by_the_cloud_module():
    with pytest.raises(Exception, match=r"^MUTGUARD_REPORT_STORE: s3:BUCKET\[/PREFIX\] needs"):
        open_archive("s3:Not_A_Bucket/x")
    with pytest.raises(Exception, match=r"needs an https:// account URL"):
        open_archive("azure-blob:http://account.blob.core.windows.net/c")
    with pytest.raises(Exception, match=r"takes no SAS\)$") as err:
        open_archive("azure-blob:https://account.blob.core.windows.net/c?sig=secret")
    assert "secret" not in str(err.value)


def test_several_target_groups_are_named_by_their_count():
    assert group_label([GROUP, GROUP]) == "eks_123456789012_eu-west-1"
    assert group_label([GROUP, ("gke", "my-project", None)]) == "2-groups"


# --- The alerts -----------------------------------------------------------------------------

STORED = ReportLinks(
    html="https://reports.example/r/report.html?X-Amz-Signature=0123456789abcdef",
    json="https://reports.example/r/report.json?X-Amz-Signature=fedcba9876543210",
    signed=True,
)


def test_every_human_sink_links_to_the_stored_report_over_its_own_setting():
    specs = [
        SinkSpec("slack", options={"report_url": "https://dashboard.example/"}),
        SinkSpec("teams"),
        SinkSpec(
            "smtp",
            options={
                "sender": "m@example.com",
                "recipients": ["s@example.com"],
                "host": "mail.example.com",
            },
        ),
    ]
    outcome = run_publishing(
        a_report(), specs, ForgetfulStore, digest=True, dry_run=True, report_links=STORED
    )
    for result in outcome.results:
        (first, *_) = result.outgoing
        rendered = json.dumps(first.payload)
        assert STORED.html in rendered, result.sink
        assert "dashboard.example" not in rendered, result.sink
    without = run_publishing(a_report(), specs[:1], ForgetfulStore, digest=True, dry_run=True)
    assert "https://dashboard.example/" in json.dumps(without.results[0].outgoing[0].payload)


def test_a_sink_error_quoting_the_signed_link_is_redacted(
    chat: ChatServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MUTGUARD_WEBHOOK_URL", chat.url + "/hook/echo")
    monkeypatch.setenv("MUTGUARD_WEBHOOK_SECRET", "reportLinkHmacKey0123456789")
    chat.fail("/hook/", 400, times=10, body=f"bad Link header: <{STORED.html}>")
    (result,) = run_publishing(
        a_report(), [SinkSpec("webhook")], ForgetfulStore, digest=True, report_links=STORED
    ).results
    assert not result.ok and result.error is not None
    assert "bad Link header" in result.error
    assert "0123456789abcdef" not in result.error
    sent = {k.lower(): v for k, v in chat.requests("/hook/")[0].headers.items()}
    assert sent["link"].startswith(f'<{STORED.html}>; rel="alternate"; type="text/html"')


# --- A function run, end to end ---------------------------------------------------------------

SLACK_HOOK = "/services/T0MUTGUARD/B0MUTGUARD/reportLinkWebhookSecret012345"
WEBHOOK = "/hook/reports"


@pytest.fixture
def lambda_env(aws: AwsFakes, s3: Any, chat: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    aws.create_cluster(aws.session(), "eu-west-1", "payments", version="1.34")
    settings = {
        "MUTGUARD_ROLE_ARN": "arn:aws:iam::{account}:role/mutguard-reader",
        "MUTGUARD_SINKS": "slack,webhook",
        "MUTGUARD_SLACK_WEBHOOK_URL": chat.url + SLACK_HOOK,
        "MUTGUARD_WEBHOOK_URL": chat.url + WEBHOOK,
        "MUTGUARD_WEBHOOK_SECRET": "reportLinkHmacKey0123456789",
        "MUTGUARD_REPORT_STORE": f"s3:{REPORTS}/runs",
        "MUTGUARD_REPORT_LINK_TTL": "3600",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


def invoke() -> dict[str, Any]:
    payload = {
        "action": "scan",
        "targets": [{"provider": "eks", "account": DEFAULT_ACCOUNT, "region": "eu-west-1"}],
        "publish": True,
        "include_rbac": False,
    }
    context = type(
        "Context",
        (),
        {
            "function_name": "mutguard-worker",
            "memory_limit_in_mb": 1024,
            "invoked_function_arn": f"arn:aws:lambda:eu-west-1:{DEFAULT_ACCOUNT}:function:w",
            "aws_request_id": str(uuid.uuid4()),
        },
    )()
    answer: dict[str, Any] = worker.direct_handler(payload, context)
    return answer


def test_a_published_scan_stores_the_report_and_the_alerts_link_to_it(
    lambda_env: None, s3: Any, chat: ChatServer, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG, logger="mutguard")
    answer = invoke()
    assert answer["publish_error"] is None
    stored = answer["stored_report"]
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=REPORTS)["Contents"])
    assert [stored["html"], stored["json"]] == [f"s3://{REPORTS}/{key}" for key in keys]
    assert all(key.endswith(("/report.html", "/report.json")) for key in keys)
    assert "_eks_123456789012_eu-west-1_" in keys[0]

    (slack,) = chat.delivered(SLACK_HOOK)
    footer = slack.json()["blocks"][-1]["elements"][0]["text"]
    (link,) = re.findall(r"<([^|>]+)\|Full report>", footer)
    assert "X-Amz-Signature=" in link
    html = s3.get_object(Bucket=REPORTS, Key=keys[0])["Body"].read()
    assert get(link) == (html, "text/html; charset=utf-8")
    assert b"payments" in html

    (hook,) = chat.delivered(WEBHOOK)
    header = {k.lower(): v for k, v in hook.headers.items()}["link"]
    html_link, json_link = re.findall(r"<([^>]+)>", header)
    assert html_link == link
    assert 'rel="alternate"; type="application/json"' in header
    assert json.loads(get(json_link)[0])["clusters"][0]["name"] == "payments"

    # The signature is a secret while it lasts: none of mutguard's log lines carries it.
    signature = re.search(r"X-Amz-Signature=([0-9a-f]+)", link)
    assert signature is not None
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("mutguard")]
    assert any(stored["html"] in line for line in ours)
    assert not any(signature.group(1) in line for line in ours)


def test_a_report_store_that_fails_retries_the_message_and_still_alerts(
    lambda_env: None, chat: ChatServer, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("MUTGUARD_REPORT_STORE", "s3:no-such-bucket")
    answer = invoke()
    assert answer["stored_report"] is None
    assert answer["publish_error"].startswith(
        "report not stored: store the report in s3:no-such-bucket: NoSuchBucket"
    )
    (slack,) = chat.delivered(SLACK_HOOK)
    assert "Full report" not in json.dumps(slack.json())
