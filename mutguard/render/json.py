"""The versioned JSON report (docs/architecture.md, Report contract)."""

from mutguard.models import Report


def render(report: Report, color: bool = False) -> str:
    return report.to_json() + "\n"
