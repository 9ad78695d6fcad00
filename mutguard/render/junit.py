"""JUnit XML for CI test reports (Jenkins, GitLab, GitHub Actions): a testsuite per cluster, a
testcase per check run on it.

A check that failed on any resource is a <failure>; one that raised is an <error> (CI systems
count both as failed tests); one that could not decide for want of a document is <skipped>
(shown, but failing no build); a check that passed is a plain testcase. docs/formats.md gives
the sources.

Every name and detail may hold text an attacker chose (cluster names, RBAC subjects):
ElementTree escapes markup, and characters XML 1.0 cannot carry at all are written as \\x and
their code point in hex.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC

from mutguard.models import ClusterReport, Finding, Report, Status
from mutguard.render.summary import remediation_text

# The order in which one check's findings decide its testcase: the worst wins.
_PRECEDENCE = (Status.FAIL, Status.ERROR, Status.UNKNOWN, Status.PASS)
_ELEMENT = {Status.FAIL: "failure", Status.ERROR: "error", Status.UNKNOWN: "skipped"}
_COUNT_ATTRIBUTE = {"failure": "failures", "error": "errors", "skipped": "skipped"}
# Outside XML 1.0's Char production: C0 controls but tab, LF and CR; surrogates; U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def _element(parent: ET.Element | None, tag: str, text: str = "", **attributes: str) -> ET.Element:
    clean = {name: xml_text(value) for name, value in attributes.items()}
    element = ET.Element(tag, clean) if parent is None else ET.SubElement(parent, tag, clean)
    if text:
        element.text = xml_text(text)
    return element


def _status(findings: list[Finding]) -> Status:
    return next(s for s in _PRECEDENCE if any(f.status is s for f in findings))


def _describe(finding: Finding) -> str:
    lines = [f"{finding.status.value} {finding.resource}", finding.detail]
    if finding.status is Status.FAIL:
        gain = "" if finding.mut_gain is None else f"; MUT gain {finding.mut_gain}"
        lines[0] += f" (severity {finding.severity.value}{gain})"
        lines.append(f"fix: {remediation_text(finding.remediation)}")
    return "\n".join(lines)


def _message(status: Status, findings: list[Finding]) -> str:
    first, *others = [f for f in findings if f.status is status]
    more = f" (and {len(others)} more)" if others else ""
    return f"{first.resource}: {first.detail}{more}"


def _labels(clusters: list[ClusterReport]) -> list[str]:
    """Each cluster's classname: its name, with its id when another cluster of the report has
    the same name, since GitLab keeps only the first of two tests named alike."""
    names = Counter(c.name for c in clusters)
    return [c.name if names[c.name] == 1 else f"{c.name} ({c.arn_or_id})" for c in clusters]


def _suite(root: ET.Element, name: str, timestamp: str) -> ET.Element:
    return _element(root, "testsuite", name=name, timestamp=timestamp, time="0")


def _count(suite: ET.Element) -> Counter[str]:
    cases = suite.findall("testcase")
    counts = Counter({"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0})
    for case in cases:
        counts.update(
            _COUNT_ATTRIBUTE[child.tag] for child in case if child.tag in _ELEMENT.values()
        )
    for attribute, value in counts.items():
        suite.set(attribute, str(value))
    return counts


def _cluster_suite(root: ET.Element, cluster: ClusterReport, label: str, timestamp: str) -> None:
    suite = _suite(root, label, timestamp)
    properties = _element(suite, "properties")
    facts = {
        "provider": cluster.provider.value,
        "account": cluster.account,
        "location": cluster.location,
        "cluster_id": cluster.arn_or_id,
        "mut": cluster.mut,
        "mut_workload": cluster.mut_workload,
        "mut_credential": cluster.mut_credential,
    }
    for name, value in facts.items():
        if value is not None:
            _element(properties, "property", name=name, value=str(value))
    by_check: dict[str, list[Finding]] = {}
    for finding in cluster.findings:
        by_check.setdefault(finding.check_id, []).append(finding)
    for check_id, findings in by_check.items():
        case = _element(
            suite, "testcase", classname=label, name=f"{check_id}: {findings[0].title}", time="0"
        )
        status = _status(findings)
        if status is not Status.PASS:
            details = "\n\n".join(_describe(f) for f in findings)
            message = _message(status, findings)
            _element(case, _ELEMENT[status], details, message=message, type=status.value)
    errors = "\n".join(cluster.errors)
    if not cluster.findings and errors:
        # Nothing was checked: a read failure must not pass as an empty, green suite.
        case = _element(suite, "testcase", classname=label, name="cluster read", time="0")
        _element(case, "error", errors, message="the cluster could not be read", type="ERROR")
    elif errors:
        _element(suite, "system-err", errors)


def render(report: Report, color: bool = False) -> str:
    # JUnit's timestamp has no zone: the report's time, in UTC.
    at = report.generated_at
    timestamp = (at.astimezone(UTC) if at.tzinfo else at).strftime("%Y-%m-%dT%H:%M:%S")
    root = _element(None, "testsuites", name=report.tool.name, time="0")
    for cluster, label in zip(report.clusters, _labels(report.clusters), strict=True):
        _cluster_suite(root, cluster, label, timestamp)
    if report.errors:
        suite = _suite(root, "scan errors", timestamp)
        for error in report.errors:
            case = _element(suite, "testcase", classname=error.scope, name="read", time="0")
            _element(case, "error", error.message, message=error.message, type="ERROR")
    totals: Counter[str] = Counter()
    for suite in root.findall("testsuite"):
        totals.update(_count(suite))
    for attribute in ("tests", "failures", "errors", "skipped"):
        root.set(attribute, str(totals[attribute]))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
