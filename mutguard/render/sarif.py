"""SARIF 2.1.0: FAIL findings as results, the catalogue entries they come from as rules."""

from __future__ import annotations

import hashlib
import json

from mutguard.checks import catalogue
from mutguard.models import Report, Severity, Status

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


def _rule(meta) -> dict:
    remediation = "\n".join(f"{p.value}: {text}" for p, text in meta.remediation.items())
    return {
        "id": meta.id,
        "name": meta.id.replace(".", "_"),
        "shortDescription": {"text": meta.title},
        "fullDescription": {"text": meta.rationale},
        "help": {"text": remediation},
        **({"helpUri": meta.references[0]} if meta.references else {}),
        "defaultConfiguration": {"level": _LEVEL[meta.severity]},
        "properties": {
            "tags": ["security", meta.area.value, meta.maturity.value],
            "security-severity": _SECURITY_SEVERITY[meta.severity],
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
        for finding in cluster.findings:
            if finding.status is not Status.FAIL:
                continue
            fingerprint = hashlib.sha256(
                f"{finding.check_id}|{cluster.arn_or_id}|{finding.resource}".encode()
            ).hexdigest()
            results.append(
                {
                    "ruleId": finding.check_id,
                    "ruleIndex": rule_index[finding.check_id],
                    "level": _LEVEL[finding.severity],
                    "message": {"text": f"{cluster.name}: {finding.detail}"},
                    "locations": [
                        {
                            "logicalLocations": [
                                {"fullyQualifiedName": finding.resource, "kind": "resource"}
                            ]
                        }
                    ],
                    "partialFingerprints": {"mutguard/v1": fingerprint},
                    "properties": {
                        "cluster": cluster.arn_or_id,
                        "provider": cluster.provider.value,
                        "mut": cluster.mut,
                        "mut_gain": finding.mut_gain,
                    },
                }
            )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": report.tool.name,
                        "version": report.tool.version,
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
