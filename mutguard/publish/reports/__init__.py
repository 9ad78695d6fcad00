"""Where the scheduled functions keep each scan's report, and the link their alerts carry.

A scan that a function publishes is also stored whole, beside the alerts: its JSON report
(`render/json.py`) and its self-contained HTML report (`render/html.py`, with each cluster's
MUT trend when a state store is configured), as two private, encrypted objects in the cloud's
object storage. The human sinks then link to the HTML one ("Full report"), and the webhook
sends both links in a `Link` header.

Settings (functions/runtime.py reads them from the environment):

    MUTGUARD_REPORT_STORE     s3:BUCKET[/PREFIX] | gcs:BUCKET[/PREFIX] |
                              azure-blob:ACCOUNT_URL/CONTAINER[/PREFIX]
    MUTGUARD_REPORT_LINK_TTL  seconds a signed link stays valid (MIN_LINK_SECONDS to
                              MAX_LINK_SECONDS, default DEFAULT_LINK_SECONDS), or `console` to
                              link to the cloud console instead of signing
    MUTGUARD_REPORT_KMS_KEY   S3 only: the KMS key for SSE-KMS (else SSE-S3, AES256)

`REPORT_ARCHIVES` maps a kind to the module that implements it, imported only when chosen
(s3.py, gcs.py, azure_blob.py); each has
`open_archive(location, kms_key) -> ReportArchive`.

Object names, under PREFIX: `YYYY/MM/DD/HHMMSSZ_<target group>_<8 hex>/report.json` and
`.../report.html`, the time the report's `generated_at` (UTC) and the group the scan message's
(provider, account and region), so runs of different groups, and runs of one group, never
overwrite each other. A signed link is a secret for as long as it lasts: it is never logged,
and every error text passes through the run's Redactor with it registered.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Protocol

from mutguard.errors import InputError
from mutguard.plugins import AZURE_BLOB, BOTO3, GOOGLE_CLOUD_STORAGE
from mutguard.registry import Registry

if TYPE_CHECKING:  # a function reads its settings here before its first cloud call: stay light
    from mutguard.models import Report
    from mutguard.publish.base import ReportLinks
    from mutguard.state import MutPoint

STORE_ENV = "MUTGUARD_REPORT_STORE"
LINK_ENV = "MUTGUARD_REPORT_LINK_TTL"
KMS_ENV = "MUTGUARD_REPORT_KMS_KEY"
CONSOLE = "console"
MIN_LINK_SECONDS = 60
# S3 SigV4 presigned URLs, GCS V4 signed URLs and user delegation SAS all end after 7 days.
MAX_LINK_SECONDS = 7 * 24 * 3600
DEFAULT_LINK_SECONDS = 24 * 3600

# Another distribution adds a kind with an entry point in the `mutguard.report_stores` group.
REPORT_ARCHIVES: Registry[ModuleType] = Registry("report store", "mutguard.report_stores")
REPORT_ARCHIVES.add("s3", "mutguard.publish.reports.s3", needs=BOTO3)
REPORT_ARCHIVES.add("gcs", "mutguard.publish.reports.gcs", needs=GOOGLE_CLOUD_STORAGE)
REPORT_ARCHIVES.add("azure-blob", "mutguard.publish.reports.azure_blob", needs=AZURE_BLOB)

JSON_TYPE = "application/json"
HTML_TYPE = "text/html; charset=utf-8"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class ReportArchiveError(RuntimeError):
    """The report could not be stored or linked; the text names the store, never a signed URL."""


class ReportArchive(Protocol):
    name: str  # the store as configured, e.g. s3:BUCKET/PREFIX, for messages

    def put(self, key: str, data: bytes, content_type: str) -> str:
        """Store one private, encrypted object at PREFIX/key; its location (s3://..., gs://...,
        https://ACCOUNT.blob...), which is no secret."""
        ...

    def signed_url(self, key: str, seconds: int) -> str:
        """A link that reads the object for `seconds` with no other credential."""
        ...

    def console_url(self, key: str) -> str:
        """The object in the cloud's console, for someone signed in with read access."""
        ...


@dataclass(frozen=True)
class LinkSetting:
    """How alerts link to a stored report: signed for `seconds`, or (None) the console."""

    seconds: int | None = DEFAULT_LINK_SECONDS


@dataclass(frozen=True)
class StoredReport:
    json_location: str
    html_location: str
    links: ReportLinks


def parse_link_setting(text: str | None, variable: str = LINK_ENV) -> LinkSetting:
    if text is None:
        return LinkSetting()
    if text == CONSOLE:
        return LinkSetting(seconds=None)
    if not text.isdigit() or not MIN_LINK_SECONDS <= int(text) <= MAX_LINK_SECONDS:
        raise InputError(
            f"{variable} must be {CONSOLE!r} or seconds from {MIN_LINK_SECONDS} to "
            f"{MAX_LINK_SECONDS} (7 days), not {text!r}"
        )
    return LinkSetting(seconds=int(text))


def check_spec(spec: str, variable: str = STORE_ENV) -> None:
    """InputError naming `variable` unless `spec` is `KIND:LOCATION` of a known kind."""
    kind, colon, location = spec.partition(":")
    if kind not in REPORT_ARCHIVES or not colon or not location.strip("/"):
        known = " | ".join(f"{k}:..." for k in REPORT_ARCHIVES.names())
        raise InputError(f"{variable} must be one of {known}, not {_shown(spec)!r}")


def open_archive(spec: str, kms_key: str | None = None, variable: str = STORE_ENV) -> ReportArchive:
    """The archive `KIND:LOCATION` names; InputError naming `variable` when it is not one,
    MissingDependency when its SDK is not installed."""
    check_spec(spec, variable)
    kind, _, location = spec.partition(":")
    try:
        archive: ReportArchive = REPORT_ARCHIVES.get(kind).open_archive(location, kms_key)
    except InputError as err:
        raise InputError(f"{variable}: {err}") from None
    return archive


def _shown(spec: str) -> str:
    """The setting as a message may quote it: a URL's query (a SAS token) left out."""
    return spec.split("?", 1)[0]


def group_label(groups: Sequence[tuple[str, str, str | None]]) -> str:
    """`provider_account_region` of the scan message's one target group (`N-groups` for an
    on-demand scan naming several), safe in every store's object names."""
    unique = list(dict.fromkeys(groups))
    if len(unique) != 1:
        return f"{len(unique)}-groups"
    text = "_".join(part for part in unique[0] if part)
    return _UNSAFE.sub("-", text)[:120]


def object_folder(report: Report, group: str) -> str:
    stamp = report.generated_at.astimezone(datetime.UTC)
    return f"{stamp:%Y/%m/%d}/{stamp:%H%M%S}Z_{group}_{uuid.uuid4().hex[:8]}"


def store_report(
    report: Report,
    archive: ReportArchive,
    link: LinkSetting,
    group: str,
    history: Mapping[str, Sequence[MutPoint]] | None = None,
) -> StoredReport:
    """Put the report's JSON and HTML in `archive`, then make the links alerts carry."""
    from mutguard.publish.base import ReportLinks
    from mutguard.render import render

    folder = object_folder(report, group)
    keys = {"json": f"{folder}/report.json", "html": f"{folder}/report.html"}
    json_location = archive.put(keys["json"], render(report, "json").encode(), JSON_TYPE)
    html = render(report, "html", history=history).encode()
    html_location = archive.put(keys["html"], html, HTML_TYPE)
    if link.seconds is None:
        links = ReportLinks(
            html=archive.console_url(keys["html"]), json=archive.console_url(keys["json"])
        )
    else:
        links = ReportLinks(
            html=archive.signed_url(keys["html"], link.seconds),
            json=archive.signed_url(keys["json"], link.seconds),
            signed=True,
        )
    return StoredReport(json_location=json_location, html_location=html_location, links=links)
