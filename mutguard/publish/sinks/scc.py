"""Google Security Command Center: findings written under a source, through the v2 API
(google.cloud.securitycenter_v2, the version Google recommends for every integration and the
only one for organizations that activated Security Command Center from December 2024).

What is written is what the run's state says changed (mutguard/state.py), as for every sink:
- each FAIL finding that is new, or whose severity rose, is written and set ACTIVE;
- each resolved finding (it was FAIL, now PASS or gone) is written again, its event_time the
  time it was seen resolved, and set INACTIVE.
Suppressed findings are never news, so never written. A digest run writes the same.

Each finding is two calls: UpdateFinding ("creates or updates a finding"; without an update
mask it replaces every mutable field and the source_properties) and SetFindingState, since a
v2 Finding's `state` is output only. Both are idempotent, so a retried delivery repeats both.

Every finding has a stable id, the first 32 hex digits of the SHA-256 of its cluster key, check
id and resource: within SCC's rule for finding ids (alphanumeric, 1 to 32 characters), so
writing it again updates it. Its name is `<source>/locations/<location>/findings/<id>`.

Finding field: from
- category: the check id; finding_class: MISCONFIGURATION.
- severity: critical, high, medium, low as CRITICAL, HIGH, MEDIUM, LOW; info (SCC has no lower
  level) as LOW. Resolved findings keep the severity they had.
- event_time: the report's generated_at, never the wall clock (SCC refuses a time later than
  its own).
- resource_name: a GKE cluster's full resource name,
  `//container.googleapis.com/projects/P/locations/L/clusters/C`; for other clusters (not
  Google Cloud resources, where SCC takes a string of the source's choosing) the cluster's ARN
  or resource id, else its mutguard key.
- description: the cluster and the finding's detail; next_steps: the remediation as text (its
  summary, then its CLI, Terraform and Console lines); external_uri: none.
- source_properties (keys start with a letter: letters, digits, underscores): cluster,
  provider, location, account, resource, status, and for a finding in the report also title,
  area, severity (mutguard's word), mut_gain, mut_gain_from, detail, remediation (an object:
  summary, and cli, terraform, console when set).

Delivery: UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED (and a token that could not be
fetched) are retried with the run's backoff; any other answer fails the sink, with the status
and the server's message on one line, cut short and redacted.

Options: `source` (required): `organizations/ORG/sources/SOURCE`, or with `/locations/LOCATION`
(default `global`); `endpoint`: the API endpoint, by default the global one for `global` and
the regional `securitycenter.LOCATION.rep.googleapis.com` for another location (data
residency); `http://HOST:PORT` dials a local test server in plain text, without credentials.
Credentials are Application Default Credentials. IAM: roles/securitycenter.findingsEditor
(securitycenter.findings.update and securitycenter.findings.setState are what it uses).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from mutguard.models import ClusterReport, Finding, Provider, Report, Severity, cluster_key
from mutguard.publish.base import (
    Json,
    Notice,
    Outgoing,
    SinkContext,
    SinkOptions,
    parse_options,
)
from mutguard.publish.google_errors import google_failure
from mutguard.publish.retry import DeliveryError
from mutguard.render.summary import remediation_text
from mutguard.state import ClusterChange, ResolvedFinding

SOURCE_PATTERN = r"^organizations/[^/]+/sources/[^/]+(/locations/[^/]+)?$"
DEFAULT_LOCATION = "global"
REGIONAL_ENDPOINT = "securitycenter.{location}.rep.googleapis.com"
GKE_SERVICE = "//container.googleapis.com/"
FINDING_ID_LENGTH = 32
CALL_TIMEOUT_SECONDS = 30.0
ACTIVE = "ACTIVE"
INACTIVE = "INACTIVE"
SEVERITIES = {
    Severity.CRITICAL: "CRITICAL",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW",
    Severity.INFO: "LOW",
}
# The statuses worth another try: the service is down, slow or over quota.
RETRYABLE_ERRORS = ("ServiceUnavailable", "DeadlineExceeded", "ResourceExhausted")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_LOCATION = re.compile(r"/locations/([^/]+)$")


class SccOptions(SinkOptions):
    source: str = Field(pattern=SOURCE_PATTERN)
    endpoint: str | None = Field(default=None, min_length=1)

    @field_validator("endpoint")
    @classmethod
    def _plain_text_only_locally(cls, value: str | None) -> str | None:
        if value and value.startswith("http://"):
            host = urlsplit(value).hostname or ""
            if host not in _LOCAL_HOSTS:
                raise ValueError("http:// (plain text) is only for a server on this machine")
        return value

    @property
    def location(self) -> str:
        match = _LOCATION.search(self.source)
        return match.group(1) if match else DEFAULT_LOCATION

    @property
    def parent(self) -> str:
        """The source and location findings are written under."""
        if _LOCATION.search(self.source):
            return self.source
        return f"{self.source}/locations/{DEFAULT_LOCATION}"

    @property
    def api_endpoint(self) -> str | None:
        if self.endpoint:
            return self.endpoint
        if self.location == DEFAULT_LOCATION:
            return None
        return REGIONAL_ENDPOINT.format(location=self.location)


def finding_id(cluster: ClusterReport, check_id: str, resource: str) -> str:
    key = json.dumps([cluster_key(cluster), check_id, resource])
    return hashlib.sha256(key.encode()).hexdigest()[:FINDING_ID_LENGTH]


def resource_name(cluster: ClusterReport) -> str:
    if cluster.provider is Provider.GKE and cluster.arn_or_id.startswith("projects/"):
        return GKE_SERVICE + cluster.arn_or_id
    return cluster.arn_or_id or cluster_key(cluster)


def timestamp(when: datetime) -> str:
    """RFC 3339 in UTC, as a protobuf Timestamp is written in JSON."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def description(cluster: ClusterReport, text: str, resource: str) -> str:
    where = "" if resource in (cluster.arn_or_id, cluster.name) else f" ({resource})"
    return f"{cluster.name} ({cluster.provider.value}, {cluster.location}): {text}{where}"


def source_properties(
    cluster: ClusterReport, resource: str, status: str, finding: Finding | None
) -> Json:
    properties: Json = {
        "cluster": cluster.name,
        "provider": cluster.provider.value,
        "location": cluster.location,
        "account": cluster.account,
        "resource": resource,
        "status": status,
    }
    if finding is not None:
        properties |= {
            "title": finding.title,
            "area": finding.area.value,
            "severity": finding.severity.value,
            "mut_gain": finding.mut_gain,
            "mut_gain_from": list(finding.mut_gain_from),
            "detail": finding.detail,
            "remediation": finding.remediation.model_dump(mode="json"),
        }
    return {key: value for key, value in properties.items() if value is not None}


class FindingBuilder:
    """The SCC findings (each with the state to set) of one report, under one source."""

    def __init__(self, report: Report, parent: str) -> None:
        self.parent = parent
        self.at = timestamp(report.generated_at)

    def _finding(
        self, cluster: ClusterReport, check_id: str, resource: str, severity: Severity
    ) -> Json:
        return {
            "name": f"{self.parent}/findings/{finding_id(cluster, check_id, resource)}",
            "resource_name": resource_name(cluster),
            "category": check_id,
            "finding_class": "MISCONFIGURATION",
            "severity": SEVERITIES[severity],
            "event_time": self.at,
        }

    def failing(self, cluster: ClusterReport, finding: Finding) -> Json:
        return {
            "state": ACTIVE,
            "finding": {
                **self._finding(cluster, finding.check_id, finding.resource, finding.severity),
                "description": description(cluster, finding.detail, finding.resource),
                "next_steps": remediation_text(finding.remediation),
                "source_properties": source_properties(
                    cluster, finding.resource, finding.status.value, finding
                ),
            },
        }

    def resolved(self, cluster: ClusterReport, gone: ResolvedFinding, now: Finding | None) -> Json:
        if now is None:
            text, status = "no longer found; resolved", "gone"
        else:
            text, status = f"resolved: {now.detail}", now.status.value
        return {
            "state": INACTIVE,
            "finding": {
                **self._finding(cluster, gone.check_id, gone.resource, gone.severity),
                "description": description(cluster, text, gone.resource),
                "source_properties": source_properties(cluster, gone.resource, status, now),
            },
        }

    def of_change(self, change: ClusterChange) -> Iterator[Json]:
        cluster = change.cluster
        for finding in change.new:
            yield self.failing(cluster, finding)
        for rise in change.severity_rose:
            yield self.failing(cluster, rise.finding)
        now = {(f.check_id, f.resource): f for f in cluster.findings}
        for gone in change.resolved:
            yield self.resolved(cluster, gone, now.get((gone.check_id, gone.resource)))


def _summary(cluster: ClusterReport, item: Json) -> str:
    finding = item["finding"]
    resource = finding["source_properties"]["resource"]
    return f"{item['state'].lower()} {finding['category']} on {cluster.name}: {resource}"


class SccSink:
    def __init__(self, name: str, options: SccOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._what = f"scc {name}"
        self._context = context
        self._client: Any = None

    def render(self, notice: Notice) -> list[Outgoing]:
        build = FindingBuilder(notice.report, self.options.parent)
        return [
            Outgoing(summary=_summary(change.cluster, item), payload=item)
            for change in notice.items
            for item in build.of_change(change)
        ]

    def deliver(self, item: Outgoing) -> None:
        from google.cloud.securitycenter_v2 import Finding as SccFinding

        finding = SccFinding.from_json(json.dumps(item.payload["finding"]))
        self._call(
            "UpdateFinding",
            lambda client: client.update_finding(
                request={"finding": finding}, retry=None, timeout=CALL_TIMEOUT_SECONDS
            ),
        )
        state = {"name": finding.name, "state": item.payload["state"]}
        self._call(
            "SetFindingState",
            lambda client: client.set_finding_state(
                request=state, retry=None, timeout=CALL_TIMEOUT_SECONDS
            ),
        )

    def _call(self, method: str, action: Any) -> None:
        try:
            action(self._security_center())
        except Exception as err:  # sorted into retryable or not; anything else is a failure
            raise _failure(f"{self._what}: {method}", err, self._context) from None

    def _security_center(self) -> Any:
        if self._client is None:
            self._client = _client(self.options.api_endpoint)
        return self._client


def _client(endpoint: str | None) -> Any:
    from google.cloud.securitycenter_v2 import SecurityCenterClient

    if endpoint is None:
        return SecurityCenterClient()
    if endpoint.startswith("http://"):
        import grpc
        from google.cloud.securitycenter_v2.services.security_center.transports import (
            SecurityCenterGrpcTransport,
        )

        # The transport uses a channel it is given as it is: plain text, no credentials.
        channel = grpc.insecure_channel(endpoint.removeprefix("http://"))
        return SecurityCenterClient(transport=SecurityCenterGrpcTransport(channel=channel))
    return SecurityCenterClient(client_options={"api_endpoint": endpoint.removeprefix("https://")})


def _failure(what: str, err: Exception, context: SinkContext) -> DeliveryError:
    return google_failure(what, err, context.redactor.redact, RETRYABLE_ERRORS)


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> SccSink:
    return SccSink(name, parse_options(SccOptions, name, options), context)
