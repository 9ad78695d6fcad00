"""The versioned JSON report of DESIGN.md."""

from mutguard.models import Report


def render(report: Report, color: bool = False) -> str:
    return report.to_json() + "\n"
