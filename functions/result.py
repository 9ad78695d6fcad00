"""What `runtime.run_scan` returns. A module of its own, loaded once the clusters are read, as
the report models are: a cold start reaches its first cloud call sooner without it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mutguard.functions.payload import Target
    from mutguard.models import Report
    from mutguard.publish.reports import StoredReport


@dataclass
class ScanResult:
    report: Report
    failed_targets: list[Target] = field(default_factory=list)
    published: list[Any] = field(default_factory=list)  # SinkResult per sink
    publish_error: str | None = None
    stored_report: StoredReport | None = None
    fleet_digest: list[Any] = field(default_factory=list)  # SinkResult per sink, when sent here

    def add_publish_error(self, error: str) -> None:
        """Keep every reason the message must be delivered again, in the order they came."""
        self.publish_error = f"{self.publish_error}; {error}" if self.publish_error else error

    @property
    def delivered(self) -> bool:
        return self.publish_error is None and all(r.ok for r in self.published)
