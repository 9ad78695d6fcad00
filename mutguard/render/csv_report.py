"""CSV (RFC 4180) for spreadsheets and data tools: one row per finding of every cluster, in the
columns docs/formats.md describes.

Cluster names, RBAC subjects and resource names come from the scanned clusters, so a cell may
hold text an attacker chose. A spreadsheet runs a cell that starts with a formula character, so
such a cell gets a leading single quote (OWASP, CSV Injection), and every cell is quoted so that
no separator or quote inside one can start another.
"""

from __future__ import annotations

import csv
import io

from mutguard.checks import catalogue
from mutguard.models import CheckMetadata, ClusterReport, Finding, Report

COLUMNS = (
    "generated_at",
    "cluster",
    "provider",
    "account",
    "location",
    "cluster_id",
    "cluster_mut",
    "cluster_mut_workload",
    "cluster_mut_credential",
    "check_id",
    "title",
    "status",
    "severity",
    "area",
    "maturity",
    "resource",
    "detail",
    "mut_gain",
    "mut_gain_from",
    "remediation",
    "remediation_cli",
    "remediation_terraform",
    "remediation_console",
    "references",
)
# What Excel, LibreOffice and Google Sheets read as the start of a formula (OWASP: = + - @ tab
# CR; ASVS 1.2.10 adds NUL), plus the quote itself, so that dropping one leading quote always
# gives the value back.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0", "'")


def escape_cell(value: str) -> str:
    # A lone surrogate (JSON allows one) cannot be written as UTF-8: keep it as \udXXX.
    value = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return "'" + value if value.startswith(_FORMULA_START) else value


def _number(value: int | None) -> str:
    return "" if value is None else str(value)


def _row(
    generated_at: str, cluster: ClusterReport, finding: Finding, meta: CheckMetadata | None
) -> list[str]:
    return [
        generated_at,
        cluster.name,
        cluster.provider.value,
        cluster.account,
        cluster.location,
        cluster.arn_or_id,
        _number(cluster.mut),
        _number(cluster.mut_workload),
        _number(cluster.mut_credential),
        finding.check_id,
        finding.title,
        finding.status.value,
        finding.severity.value,
        finding.area.value,
        meta.maturity.value if meta else "",
        finding.resource,
        finding.detail,
        _number(finding.mut_gain),
        " ".join(finding.mut_gain_from),
        finding.remediation.summary,
        finding.remediation.cli or "",
        finding.remediation.terraform or "",
        finding.remediation.console or "",
        " ".join(meta.references) if meta else "",
    ]


def render(report: Report, color: bool = False) -> str:
    metas = {check.meta.id: check.meta for check in catalogue()}
    generated_at = report.generated_at.isoformat().replace("+00:00", "Z")
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for cluster in report.clusters:
        for finding in cluster.findings:
            row = _row(generated_at, cluster, finding, metas.get(finding.check_id))
            writer.writerow([escape_cell(cell) for cell in row])
    return out.getvalue()
