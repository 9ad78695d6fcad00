"""AWS Security Hub: findings imported in the AWS Security Finding Format (ASFF) with
BatchImportFindings, at most 100 findings per call.

What is imported is what the run's state says changed (mutguard/state.py), as for every sink:
- each FAIL finding that is new, or whose severity rose, is imported with RecordState ACTIVE and
  Compliance.Status FAILED;
- each resolved finding (it was FAIL, now PASS or gone) is imported again with RecordState
  ARCHIVED, Workflow.Status RESOLVED and Compliance.Status PASSED (NOT_AVAILABLE when the
  finding is gone, e.g. its workload was deleted).
Suppressed findings are never news, so never imported. A digest run imports the same: Security
Hub keeps what it was told, and a finding that did not change needs no new import.

Every finding has a stable Id, `mutguard/<check id>/<SHA-256 of cluster key, check id and
resource>`, so importing it again updates it: a re-run, a rise in severity, its archiving.

ASFF field: from
- ProductArn: `product_arn`, else the account's own custom-integration product,
  `arn:<partition>:securityhub:<region>:<account>:product/<account>/default`.
- AwsAccountId: `account_id` (else the account in a default-product `product_arn`). Security
  Hub takes findings for the default product only from the account they name, so this is the
  account the sink runs in; the cluster's own account is in Resources and ProductFields.
- GeneratorId: the check id. Types: `Software and Configuration Checks/AWS Security Best
  Practices` for EKS, the namespace `Software and Configuration Checks` for other providers.
- CreatedAt, UpdatedAt (for a failing finding also LastObservedAt, and FirstObservedAt when it
  is new): the report's generated_at, never the wall clock. The state keeps no first-seen time,
  so an update's CreatedAt is the time of the report that made it.
- Severity.Label and FindingProviderFields (Severity, Types; the fields a provider updates
  through): critical, high, medium, low, info as CRITICAL, HIGH, MEDIUM, LOW, INFORMATIONAL;
  INFORMATIONAL once resolved. Severity.Original keeps mutguard's word.
- Title: the check's title; Description: the cluster and the finding's detail;
  Remediation.Recommendation.Text: the finding's remediation as text (its summary, then its
  CLI, Terraform and Console lines), cut to ASFF's 512 characters.
- Resources: the cluster, as AwsEksCluster with its ARN when it has one, else Other with its
  id; Details.Other names the cluster and the finding's resource.
- ProductFields: `mutguard/...` keys: cluster, provider, location, account, resource, area,
  severity, mut_gain and mut_gain_from (what fixing the finding raises MUT by, and from where).

Limits, from the Security Hub API reference (AwsSecurityFinding, Recommendation) and the
partner guide's BatchImportFindings guidelines: 100 findings, 6 MB per call; 240 KB per finding;
Title 256, Description 1024, Recommendation.Text 512 characters; ProductFields values 2048;
Resource Details.Other values under 1024. Text is cut to fit (counted in UTF-8 bytes, which
also keeps within a count of characters) and ends with an ellipsis; a finding still over
240 KB fails the sink rather than being sent to be refused.

Delivery: one BatchImportFindings per batch, paced to Security Hub's rate of 10 calls a second
per account and Region. A throttled call (LimitExceededException) is retried with the run's
backoff. Findings the answer lists in FailedFindings are retried alone when their ErrorCode is a
transient one; the others fail the sink, reported by count and error code only (never the
server's message, which may quote the finding).

Options: `account_id` (12 digits; required unless `product_arn` is a default product);
`product_arn` (default: the custom-integration product above); `region` (default: the one in
`product_arn`, else boto3's). IAM: securityhub:BatchImportFindings on the product ARN.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, model_validator

from mutguard.models import ClusterReport, Finding, Provider, Report, Severity, cluster_key
from mutguard.publish import aws
from mutguard.publish.base import Json, Notice, Outgoing, SinkContext, SinkOptions, parse_options
from mutguard.publish.messages import MessageTooLarge
from mutguard.publish.retry import DeliveryError, Pacer, RetryableError
from mutguard.publish.text import ELLIPSIS
from mutguard.render.summary import remediation_text
from mutguard.state import ClusterChange, ResolvedFinding

SCHEMA_VERSION = "2018-10-08"
PRODUCT_NAME = "mutguard"
BATCH_FINDINGS = 100
# "KB" and "MB" read as the smaller, decimal units: safe whichever Security Hub means.
BATCH_BYTES = 6_000_000
FINDING_BYTES = 240_000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 1024
RECOMMENDATION_LIMIT = 512
PRODUCT_FIELD_LIMIT = 2048
OTHER_VALUE_LIMIT = 1023  # "fewer than 1,024 characters"
SECONDS_PER_CALL = 0.1  # 10 calls a second per account and Region

SEVERITY_LABELS = {
    Severity.CRITICAL: "CRITICAL",
    Severity.HIGH: "HIGH",
    Severity.MEDIUM: "MEDIUM",
    Severity.LOW: "LOW",
    Severity.INFO: "INFORMATIONAL",
}
EKS_TYPE = "Software and Configuration Checks/AWS Security Best Practices"
OTHER_TYPE = "Software and Configuration Checks"
# FailedFindings codes worth importing again: the transient ones of botocore's standard retry
# mode (aws.RETRYABLE_CODES) and Security Hub's internal error.
RETRYABLE_FAILURES = aws.RETRYABLE_CODES | {"InternalException"}

_ACCOUNT = r"^\d{12}$"
_PRODUCT_ARN = r"^arn:[a-z-]+:securityhub:[a-z0-9-]+:\d{12}:product/[^/]+/[^/]+$"
_DEFAULT_PRODUCT = re.compile(r"^arn:[a-z-]+:securityhub:[a-z0-9-]+:(\d{12}):product/\1/default$")


class SecurityHubOptions(SinkOptions):
    account_id: str | None = Field(default=None, pattern=_ACCOUNT)
    product_arn: str | None = Field(default=None, pattern=_PRODUCT_ARN)
    region: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _account_known(self) -> SecurityHubOptions:
        if self.account_id is None and self.product_account is None:
            raise ValueError(
                "account_id is required (the account the findings are imported in) unless "
                "product_arn is that account's default product"
            )
        if self.account_id and self.product_account and self.account_id != self.product_account:
            raise ValueError(
                f"account_id {self.account_id} differs from product_arn's {self.product_account}"
            )
        product_region = aws.region_of_arn(self.product_arn or "")
        if self.region and product_region and self.region != product_region:
            raise ValueError(f"region {self.region} differs from product_arn's {product_region}")
        return self

    @property
    def product_account(self) -> str | None:
        match = _DEFAULT_PRODUCT.match(self.product_arn or "")
        return match.group(1) if match else None

    @property
    def account(self) -> str:
        return self.account_id or self.product_account or ""


def fit(text: str, limit: int) -> str:
    """`text` in at most `limit` UTF-8 bytes, cut with an ellipsis when it is longer."""
    if len(text.encode()) <= limit:
        return text
    room = limit - len(ELLIPSIS.encode())
    return text.encode()[:room].decode(errors="ignore") + ELLIPSIS


def timestamp(when: datetime) -> str:
    """ASFF's `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def finding_id(cluster: ClusterReport, check_id: str, resource: str) -> str:
    key = json.dumps([cluster_key(cluster), check_id, resource])
    return f"mutguard/{check_id}/{hashlib.sha256(key.encode()).hexdigest()}"


def finding_types(cluster: ClusterReport) -> list[str]:
    return [EKS_TYPE if cluster.provider is Provider.EKS else OTHER_TYPE]


def cluster_resource(cluster: ClusterReport, resource: str) -> Json:
    """The cluster, with the finding's own resource (a workload, a binding, ...) beside it."""
    other = {
        "cluster": cluster.name,
        "provider": cluster.provider.value,
        "location": cluster.location,
        "resource": resource,
    }
    details: Json = {"Other": {k: fit(v, OTHER_VALUE_LIMIT) for k, v in other.items() if v}}
    arn = cluster.arn_or_id
    if cluster.provider is Provider.EKS and arn.startswith("arn:"):
        details["AwsEksCluster"] = {"Arn": arn, "Name": cluster.name}
        return {
            "Type": "AwsEksCluster",
            "Id": arn,
            "Partition": arn.split(":")[1],
            "Region": cluster.location,
            "Details": details,
        }
    return {"Type": "Other", "Id": arn or cluster.name, "Details": details}


def product_fields(
    cluster: ClusterReport, resource: str, finding: Finding | None
) -> dict[str, str]:
    fields = {
        "cluster": cluster.name,
        "provider": cluster.provider.value,
        "location": cluster.location,
        "account": cluster.account,
        "resource": resource,
    }
    if finding is not None:
        fields |= {
            "area": finding.area.value,
            "severity": finding.severity.value,
            "mut_gain": "" if finding.mut_gain is None else str(finding.mut_gain),
            "mut_gain_from": ",".join(finding.mut_gain_from),
        }
    return {f"mutguard/{k}": fit(v, PRODUCT_FIELD_LIMIT) for k, v in fields.items() if v}


def description(cluster: ClusterReport, text: str, resource: str) -> str:
    where = "" if resource in (cluster.arn_or_id, cluster.name) else f" ({resource})"
    head = f"{cluster.name} ({cluster.provider.value}, {cluster.location}): "
    return fit(head + text + where, DESCRIPTION_LIMIT)


class FindingBuilder:
    """The ASFF findings of one report, for one product and account."""

    def __init__(self, report: Report, product_arn: str, account: str) -> None:
        self.product_arn = product_arn
        self.account = account
        self.at = timestamp(report.generated_at)

    def _base(self, cluster: ClusterReport, check_id: str, resource: str) -> Json:
        types = finding_types(cluster)
        return {
            "SchemaVersion": SCHEMA_VERSION,
            "Id": finding_id(cluster, check_id, resource),
            "ProductArn": self.product_arn,
            "ProductName": PRODUCT_NAME,
            "GeneratorId": check_id,
            "AwsAccountId": self.account,
            "Types": types,
            "CreatedAt": self.at,
            "UpdatedAt": self.at,
            "Resources": [cluster_resource(cluster, resource)],
        }

    def failing(self, cluster: ClusterReport, finding: Finding, new: bool) -> Json:
        label = SEVERITY_LABELS[finding.severity]
        severity = {"Label": label, "Original": finding.severity.value}
        observed = {"FirstObservedAt": self.at} if new else {}
        return {
            **self._base(cluster, finding.check_id, finding.resource),
            **observed,
            "LastObservedAt": self.at,
            "Severity": severity,
            "FindingProviderFields": {"Severity": severity, "Types": finding_types(cluster)},
            "Title": fit(finding.title, TITLE_LIMIT),
            "Description": description(cluster, finding.detail, finding.resource),
            "Remediation": {
                "Recommendation": {
                    "Text": fit(remediation_text(finding.remediation), RECOMMENDATION_LIMIT)
                }
            },
            "ProductFields": product_fields(cluster, finding.resource, finding),
            "Compliance": {"Status": "FAILED"},
            "RecordState": "ACTIVE",
        }

    def resolved(self, cluster: ClusterReport, gone: ResolvedFinding, now: Finding | None) -> Json:
        severity = {"Label": SEVERITY_LABELS[Severity.INFO], "Original": gone.severity.value}
        if now is None:
            title, text, status = gone.check_id, "no longer found; resolved", "NOT_AVAILABLE"
        else:
            title, text, status = now.title, f"resolved: {now.detail}", "PASSED"
        return {
            **self._base(cluster, gone.check_id, gone.resource),
            "Severity": severity,
            "FindingProviderFields": {"Severity": severity, "Types": finding_types(cluster)},
            "Title": fit(title, TITLE_LIMIT),
            "Description": description(cluster, text, gone.resource),
            "ProductFields": product_fields(cluster, gone.resource, now),
            "Compliance": {"Status": status},
            "RecordState": "ARCHIVED",
            "Workflow": {"Status": "RESOLVED"},
        }

    def of_change(self, change: ClusterChange) -> Iterator[Json]:
        cluster = change.cluster
        for finding in change.new:
            yield self.failing(cluster, finding, new=True)
        for rise in change.severity_rose:
            yield self.failing(cluster, rise.finding, new=False)
        now = {(f.check_id, f.resource): f for f in cluster.findings}
        for gone in change.resolved:
            yield self.resolved(cluster, gone, now.get((gone.check_id, gone.resource)))


def size(finding: Json) -> int:
    return len(json.dumps(finding, separators=(",", ":")).encode())


def batches(findings: Sequence[Json]) -> list[list[Json]]:
    """Findings in order, at most BATCH_FINDINGS and BATCH_BYTES (with the request's own
    `{"Findings":[...]}` and commas) per batch."""
    overhead = len(b'{"Findings":[]}')
    groups: list[list[Json]] = []
    used = 0
    for finding in findings:
        cost = size(finding) + 1
        if not groups or len(groups[-1]) >= BATCH_FINDINGS or used + cost > BATCH_BYTES:
            groups.append([])
            used = overhead
        groups[-1].append(finding)
        used += cost
    return groups


def _check_size(finding: Json) -> Json:
    if (bytes_ := size(finding)) > FINDING_BYTES:
        resource = finding["ProductFields"].get("mutguard/resource", "")
        raise MessageTooLarge(
            f"the {finding['GeneratorId']} finding on {resource} is {bytes_} bytes; Security Hub "
            f"takes at most {FINDING_BYTES}"
        )
    return finding


def _codes(failures: Sequence[Json]) -> str:
    counts = Counter(str(f.get("ErrorCode") or "no code") for f in failures)
    return ", ".join(f"{code}: {count}" for code, count in sorted(counts.items()))


class SecurityHubSink:
    def __init__(self, name: str, options: SecurityHubOptions, context: SinkContext) -> None:
        self.name = name
        self.options = options
        self._what = f"securityhub {name}"
        self._redactor = context.redactor
        self._pacer = Pacer(SECONDS_PER_CALL, context.retry)
        self._client: Any = None
        # Per batch (its finding Ids) while the dispatcher retries it: what is still to import,
        # and what Security Hub refused for good.
        self._pending: dict[tuple[str, ...], list[Json]] = {}
        self._refused: dict[tuple[str, ...], list[Json]] = {}

    def render(self, notice: Notice) -> list[Outgoing]:
        build = FindingBuilder(notice.report, self._product_arn(), self.options.account)
        findings = [_check_size(f) for item in notice.items for f in build.of_change(item)]
        groups = batches(findings)
        return [
            Outgoing(
                summary=f"{len(group)} findings: {_state_counts(group)} "
                f"(batch {index}/{len(groups)})",
                payload={"findings": group},
            )
            for index, group in enumerate(groups, start=1)
        ]

    def deliver(self, item: Outgoing) -> None:
        batch: list[Json] = item.payload["findings"]
        key = tuple(f["Id"] for f in batch)
        pending = self._pending.get(key, batch)
        self._pacer.wait()
        answer = aws.call(
            self._what,
            lambda: self._securityhub().batch_import_findings(Findings=pending),
            self._redactor,
        )
        failures: list[Json] = answer.get("FailedFindings") or []
        again = {f.get("Id") for f in failures if f.get("ErrorCode") in RETRYABLE_FAILURES}
        refused = self._refused.setdefault(key, [])
        refused += [f for f in failures if f.get("Id") not in again]
        retry = [f for f in pending if f["Id"] in again]
        if retry:
            self._pending[key] = retry
            retrying = [f for f in failures if f.get("Id") in again]
            raise RetryableError(self._failed(len(batch), retrying + refused))
        self._pending.pop(key, None)
        if refused_for_good := self._refused.pop(key):
            raise DeliveryError(self._failed(len(batch), refused_for_good))

    def _failed(self, total: int, failures: Sequence[Json]) -> str:
        return self._redactor.redact(
            f"{self._what}: {len(failures)} of {total} findings not imported ({_codes(failures)})"
        )

    def _product_arn(self) -> str:
        if self.options.product_arn:
            return self.options.product_arn
        meta = self._securityhub().meta  # creating the client makes no request
        account = self.options.account
        region = f"arn:{meta.partition}:securityhub:{meta.region_name}:{account}"
        return f"{region}:product/{account}/default"

    def _securityhub(self) -> Any:
        if self._client is None:
            from botocore.exceptions import NoRegionError

            region = self.options.region or aws.region_of_arn(self.options.product_arn or "")
            try:
                self._client = aws.client("securityhub", region)
            except NoRegionError:
                raise DeliveryError(
                    f"{self._what}: no region: set the sink's `region` or AWS_REGION"
                ) from None
        return self._client


def _state_counts(group: Sequence[Json]) -> str:
    counts = Counter(f["RecordState"].lower() for f in group)
    return ", ".join(f"{count} {state}" for state, count in sorted(counts.items()))


def build(name: str, options: Mapping[str, Any], context: SinkContext) -> SecurityHubSink:
    return SecurityHubSink(name, parse_options(SecurityHubOptions, name, options), context)
