"""OCSF 1.5.0 Compliance Finding events (class_uid 2003), one per finding of every cluster, as a
JSON array: what security lakes and SIEMs ingest from posture tools such as Prowler. The
mapping, with its sources, is in docs/formats.md.

Every field name here is one the OCSF schema defines and py-ocsf-models (the library Prowler
writes OCSF with) models; what OCSF has no place for, MUT above all, goes under `unmapped`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from mutguard.checks import catalogue
from mutguard.models import CheckMetadata, ClusterReport, Finding, Report, Severity, Status
from mutguard.provider_api import Cloud
from mutguard.providers import labels
from mutguard.render.summary import remediation_text

OCSF_VERSION = "1.5.0"
CLASS_UID = 2003  # Compliance Finding
CATEGORY_UID = 2  # Findings
ACTIVITY_CREATE = 1
TYPE_UID = CLASS_UID * 100 + ACTIVITY_CREATE
FINDING_STATUS_NEW = 1

SEVERITY_ID = {
    Severity.INFO: (1, "Informational"),
    Severity.LOW: (2, "Low"),
    Severity.MEDIUM: (3, "Medium"),
    Severity.HIGH: (4, "High"),
    Severity.CRITICAL: (5, "Critical"),
}
# compliance.status_id: Pass 1, Warning 2 ("did not yield a result due to missing information"),
# Fail 3; a check that raised has no result at all: Unknown 0.
COMPLIANCE_STATUS_ID = {Status.PASS: 1, Status.UNKNOWN: 2, Status.FAIL: 3, Status.ERROR: 0}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def finding_uid(cluster: ClusterReport, finding: Finding) -> str:
    """Unchanged while the same check has a finding on the same resource of the same cluster.
    A check may report one resource more than once (a binding, once per subject it grants):
    then the detail, which names what differs, is part of the identity too."""
    identity = [cluster.provider.value, cluster.arn_or_id, finding.check_id, finding.resource]
    shared = [
        f
        for f in cluster.findings
        if (f.check_id, f.resource) == (finding.check_id, finding.resource)
    ]
    if len(shared) > 1:
        identity.append(finding.detail)
    digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
    return f"mutguard-{finding.check_id}-{digest}"


def _resources(cluster: ClusterReport, finding: Finding) -> list[dict]:
    the_cluster = {
        "uid": cluster.arn_or_id,
        "name": cluster.name,
        "type": labels(cluster.provider).resource_type,
        "region": cluster.location,
    }
    if finding.resource == cluster.arn_or_id:
        return [the_cluster]
    return [{"name": finding.resource, "region": cluster.location}, the_cluster]


def _event(
    cluster: ClusterReport,
    finding: Finding,
    meta: CheckMetadata | None,
    report: Report,
    when: tuple[int, str],
) -> dict:
    millis, iso = when
    severity_id, severity = SEVERITY_ID[finding.severity]
    # cloud.provider and cloud.account.type_id as Prowler writes them; a kubeconfig cluster has
    # no cloud.
    cloud = labels(cluster.provider).cloud
    event: dict = {
        "activity_id": ACTIVITY_CREATE,
        "activity_name": "Create",
        "category_uid": CATEGORY_UID,
        "category_name": "Findings",
        "class_uid": CLASS_UID,
        "class_name": "Compliance Finding",
        "type_uid": TYPE_UID,
        "type_name": "Compliance Finding: Create",
        "time": millis,
        "time_dt": iso,
        "severity_id": severity_id,
        "severity": severity,
        "status_id": FINDING_STATUS_NEW,
        "status": "New",
        "status_code": finding.status.value,
        "status_detail": finding.detail,
        "message": f"{cluster.name}: {finding.detail}",
        "metadata": _metadata(report, finding, with_cloud=cloud is not None),
        "finding_info": _finding_info(cluster, finding, meta, when),
        "compliance": {
            "standards": [report.tool.name],
            "control": finding.check_id,
            "status_id": COMPLIANCE_STATUS_ID[finding.status],
        },
        "remediation": {
            "desc": remediation_text(finding.remediation),
            **({"references": meta.references} if meta and meta.references else {}),
        },
        "resources": _resources(cluster, finding),
        "unmapped": _unmapped(cluster, finding, meta),
    }
    if cloud:
        event["cloud"] = _cloud(cluster, cloud)
    return event


def _metadata(report: Report, finding: Finding, with_cloud: bool) -> dict:
    return {
        "version": OCSF_VERSION,
        "product": {
            "uid": report.tool.name,
            "name": report.tool.name,
            "vendor_name": report.tool.name,
            "version": report.tool.version,
        },
        "event_code": finding.check_id,
        "profiles": ["cloud", "datetime"] if with_cloud else ["datetime"],
    }


def _finding_info(
    cluster: ClusterReport, finding: Finding, meta: CheckMetadata | None, when: tuple[int, str]
) -> dict:
    millis, iso = when
    return {
        "uid": finding_uid(cluster, finding),
        "title": finding.title,
        **({"desc": meta.rationale} if meta else {}),
        "types": [finding.area.value],
        "created_time": millis,
        "created_time_dt": iso,
    }


def _unmapped(cluster: ClusterReport, finding: Finding, meta: CheckMetadata | None) -> dict:
    """What OCSF has no attribute for: the check's area and maturity, the MUT it raises, and
    the cluster's MUT."""
    return {
        "area": finding.area.value,
        "maturity": meta.maturity.value if meta else None,
        "mut_gain": finding.mut_gain,
        "mut_gain_from": finding.mut_gain_from,
        "cluster": {
            "name": cluster.name,
            "uid": cluster.arn_or_id,
            "mut": cluster.mut,
            "mut_workload": cluster.mut_workload,
            "mut_credential": cluster.mut_credential,
            "mut_upper_bound": cluster.mut_upper_bound,
        },
    }


def _cloud(cluster: ClusterReport, cloud: Cloud) -> dict:
    return {
        "provider": cloud.provider,
        "region": cluster.location,
        "account": {
            "uid": cluster.account,
            "name": cluster.account,
            "type_id": cloud.account_type_id,
            "type": cloud.account_type,
        },
    }


def _time(report: Report) -> tuple[int, str]:
    """The report's own time as OCSF's timestamp_t (milliseconds since the epoch) and
    datetime_t (RFC 3339)."""
    at = report.generated_at
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return (at - _EPOCH) // timedelta(milliseconds=1), at.isoformat().replace("+00:00", "Z")


def render(report: Report, color: bool = False) -> str:
    metas = {check.meta.id: check.meta for check in catalogue()}
    when = _time(report)
    events = [
        _event(cluster, finding, metas.get(finding.check_id), report, when)
        for cluster in report.clusters
        for finding in cluster.findings
    ]
    # ASCII escapes keep the output valid UTF-8 even for a lone surrogate read from a document.
    return json.dumps(events, indent=2) + "\n"
