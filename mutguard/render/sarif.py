"""SARIF 2.1.0 for GitHub code scanning: FAIL findings as results, the catalogue entries they come
from as rules.

A finding is about a cluster, not a file, yet GitHub shows only results with a physical location:
each result points at line 1 of a stable relative URI naming its cluster,
clusters/<provider>/<account>/<location>/<name> (for AKS the account is the subscription and the
resource group), and keeps the resource as its logical location.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from importlib import metadata
from urllib.parse import quote

from mutguard.checks import catalogue
from mutguard.models import CheckMetadata, ClusterReport, Finding, Report, Severity, Status
from mutguard.providers import labels
from mutguard.render.summary import remediation_fields, remediation_text
from mutguard.sources import Provider

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning ranks results by this CVSS-like score.
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}
# The URI segment for what a cluster does not have, such as a kubeconfig cluster's account.
_NO_SEGMENT = "-"
_AZURE_RESOURCE_GROUP = re.compile(r"^/subscriptions/[^/]+/resourcegroups/([^/]+)/", re.IGNORECASE)
# [project.urls] labels, normalised as PEP 753 does, that name the project's home, best first.
_HOME_LABELS = ("homepage", "repository", "source")
_LABEL_NOISE = str.maketrans("", "", string.punctuation + string.whitespace)


def _project_home() -> str | None:
    """The home URL in the installed package's metadata (pyproject.toml [project.urls])."""
    try:
        entries = metadata.metadata("mutguard").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        return None
    urls = {}
    for entry in entries:
        label, _, url = entry.partition(",")
        urls[label.translate(_LABEL_NOISE).lower()] = url.strip()
    return next((urls[label] for label in _HOME_LABELS if urls.get(label)), None)


def _help(meta: CheckMetadata) -> dict:
    remediation = [(labels(p).title, fix) for p, fix in meta.remediation.items()]
    text = [meta.rationale, ""]
    text += [
        f"{title}: " + remediation_text(fix).replace("\n", "\n  ") for title, fix in remediation
    ]
    markdown = [meta.rationale, "", "**Remediation**", ""]
    for title, fix in remediation:
        markdown.append(f"- **{title}**: {fix.summary}")
        for field in remediation_fields(fix):
            shown = (f"`{line}`" if field.commands else line for line in field.lines)
            markdown += [f"  - {field.label}: {line}" for line in shown]
    if meta.references:
        text += ["", "References:", *meta.references]
        markdown += ["", "**References**", "", *(f"- <{url}>" for url in meta.references)]
    return {"text": "\n".join(text), "markdown": "\n".join(markdown)}


def _rule(meta: CheckMetadata) -> dict:
    return {
        "id": meta.id,
        "name": meta.id.replace(".", "_"),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.rationale},
        "help": _help(meta),
        **({"helpUri": meta.references[0]} if meta.references else {}),
        "defaultConfiguration": {"level": _LEVEL[meta.severity]},
        "properties": {
            "tags": ["security", meta.area.value, meta.maturity.value],
            "security-severity": _SECURITY_SEVERITY[meta.severity],
        },
    }


def _cluster_uri(cluster: ClusterReport) -> str:
    """clusters/<provider>/<account>/<location>/<name>, each segment percent-encoded (RFC 3986)
    so that the URI stays a relative reference whatever the names hold."""
    scope = [cluster.account]
    group = _AZURE_RESOURCE_GROUP.match(cluster.arn_or_id)
    # AKS cluster names are unique within a resource group, not within a subscription and region.
    if cluster.provider is Provider.AKS and group:
        scope.append(group.group(1))
    segments = [cluster.provider.value, *scope, cluster.location, cluster.name]
    return "/".join(["clusters", *(quote(s, safe="") or _NO_SEGMENT for s in segments)])


def _result(cluster: ClusterReport, finding: Finding, rule_index: int) -> dict:
    # The identity of a finding: unchanged while the same check fails on the same resource.
    fingerprint = hashlib.sha256(
        f"{finding.check_id}|{cluster.arn_or_id}|{finding.resource}".encode()
    ).hexdigest()
    return {
        "ruleId": finding.check_id,
        "ruleIndex": rule_index,
        "level": _LEVEL[finding.severity],
        "message": {"text": f"{cluster.name}: {finding.detail}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": _cluster_uri(cluster)},
                    "region": {"startLine": 1},
                },
                "logicalLocations": [{"fullyQualifiedName": finding.resource, "kind": "resource"}],
            }
        ],
        # GitHub matches alerts across runs by primaryLocationLineHash alone, and upload-sarif
        # cannot compute it for a URI that is no file in the repository: without it every
        # finding of one cluster and check would share one alert.
        "partialFingerprints": {"mutguard/v1": fingerprint, "primaryLocationLineHash": fingerprint},
        "properties": {
            "cluster": cluster.arn_or_id,
            "provider": cluster.provider.value,
            "mut": cluster.mut,
            "mut_gain": finding.mut_gain,
        },
    }


def render(report: Report, color: bool = False) -> str:
    metas = {check.meta.id: check.meta for check in catalogue()}
    used = sorted({f.check_id for c in report.clusters for f in c.findings if f.check_id in metas})
    rule_index = {check_id: i for i, check_id in enumerate(used)}
    results = []
    notifications = [
        {"level": "error", "message": {"text": f"{e.scope}: {e.message}"}} for e in report.errors
    ]
    for cluster in report.clusters:
        notifications += [
            {"level": "error", "message": {"text": f"cluster {cluster.name}: {e}"}}
            for e in cluster.errors
        ]
        results += [
            _result(cluster, finding, rule_index[finding.check_id])
            for finding in cluster.findings
            if finding.status is Status.FAIL
        ]
    home = _project_home()
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": report.tool.name,
                        "version": report.tool.version,
                        **({"informationUri": home} if home else {}),
                        "rules": [_rule(metas[check_id]) for check_id in used],
                    }
                },
                "invocations": [
                    {
                        "executionSuccessful": not notifications,
                        "endTimeUtc": report.generated_at.isoformat().replace("+00:00", "Z"),
                        "toolExecutionNotifications": notifications,
                    }
                ],
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2) + "\n"
