"""What mutguard remembers between runs, so that alerts say only what changed.

A run's state is, per cluster, its three MUT values and per finding (check_id, resource) its
status and severity. `changes()` compares the last state with a new report: FAIL findings that
are new, the ways a cluster got worse (a MUT value dropped, a failing finding's severity rose),
and findings that were resolved (were FAIL, now PASS or gone). A cluster with none of those has
nothing to say. `next_state()` is what to save after the alerts went out.

Suppressions (owner, reason, expiry date; from a YAML file) silence findings, never a MUT drop:
the MUT is the headline and no exception for one finding may hide that the cluster got weaker.
The state records which failing findings were suppressed, so an expired suppression alerts
again even though the finding itself did not change.

A cluster that could not be read this run keeps its last known findings and MUT (its state is
only marked unreadable): "we could not look" is neither "resolved" nor "unchanged", and the next
readable run is compared with what was last seen.

History: each cluster's state also keeps the MUT of its last HISTORY_LENGTH readable runs
(`MutPoint`: the report's generated_at, the three values and which were upper bounds), oldest
first, for the trend the HTML report draws. `next_state()` adds this run's point, replacing one
with the same generated_at (the same report saved again), so it is saved with the state, in the
same write; a run that could not read the cluster adds none.

Stores keep these states: the protocol, claims and scheduled runs are in mutguard/store.py;
the stores themselves in mutguard/publish/. Suppressions are in mutguard/suppressions.py.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from mutguard.models import ClusterReport, Finding, Report, Severity, Status, cluster_key
from mutguard.suppressions import Suppression

FindingKey = tuple[str, str]  # (check_id, resource)
MUT_FIELDS = ("mut", "mut_workload", "mut_credential")
HISTORY_LENGTH = 30  # runs of MUT kept per cluster


def finding_key(finding: Finding) -> FindingKey:
    return (finding.check_id, finding.resource)


@dataclass(frozen=True)
class Mut:
    """The three MUT values of a cluster (None: unknown)."""

    mut: int | None
    mut_workload: int | None
    mut_credential: int | None

    @classmethod
    def of(cls, cluster: ClusterReport) -> Mut:
        return cls(cluster.mut, cluster.mut_workload, cluster.mut_credential)

    def value(self, name: str) -> int | None:
        number: int | None = getattr(self, name)
        return number

    def dropped_in(self, after: Mut) -> tuple[str, ...]:
        """Which values are lower in `after` (unknown on either side is not a drop)."""
        return tuple(
            name
            for name in MUT_FIELDS
            if (before := self.value(name)) is not None
            and (now := after.value(name)) is not None
            and now < before
        )

    def lowest(self) -> int | None:
        known = [n for n in (self.mut, self.mut_workload, self.mut_credential) if n is not None]
        return min(known) if known else None


def utc(moment: datetime.datetime) -> datetime.datetime:
    """The moment in UTC; one without a zone is taken as UTC (as `--as-of` reads it)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


@dataclass(frozen=True)
class MutPoint:
    """One run's MUT of a cluster: when (the report's generated_at, in UTC), the three values,
    and which of them were upper bounds (ClusterReport.mut_upper_bound)."""

    generated_at: datetime.datetime
    mut: Mut
    upper_bound: tuple[str, ...] = ()

    @classmethod
    def of(cls, cluster: ClusterReport, generated_at: datetime.datetime) -> MutPoint:
        bound = tuple(name for name in MUT_FIELDS if name in cluster.mut_upper_bound)
        return cls(utc(generated_at), Mut.of(cluster), bound)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at.isoformat(),
            **{name: self.mut.value(name) for name in MUT_FIELDS},
            "upper_bound": list(self.upper_bound),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MutPoint:
        when = utc(datetime.datetime.fromisoformat(data["generated_at"]))
        bound = tuple(name for name in MUT_FIELDS if name in data["upper_bound"])
        return cls(when, Mut(*(data[name] for name in MUT_FIELDS)), bound)


def add_point(
    history: Sequence[MutPoint], point: MutPoint, length: int = HISTORY_LENGTH
) -> tuple[MutPoint, ...]:
    """The history with this point, in time order, at most `length` points (the oldest go
    first). A point with the same generated_at (the same report saved again) is replaced."""
    if length < 1:
        raise ValueError("a history keeps at least one point")
    kept = [p for p in history if p.generated_at != point.generated_at]
    kept.append(point)
    kept.sort(key=lambda p: p.generated_at)
    return tuple(kept[-length:])


@dataclass(frozen=True)
class FindingState:
    status: Status
    severity: Severity
    suppressed: bool = False


@dataclass(frozen=True)
class ClusterState:
    readable: bool
    mut: Mut
    findings: Mapping[FindingKey, FindingState] = field(default_factory=dict)
    history: tuple[MutPoint, ...] = ()  # the last runs' MUT, oldest first

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible form, for stores that keep one document per cluster."""
        return {
            "readable": self.readable,
            **{name: self.mut.value(name) for name in MUT_FIELDS},
            "findings": [
                {
                    "check_id": check_id,
                    "resource": resource,
                    "status": state.status.value,
                    "severity": state.severity.value,
                    "suppressed": state.suppressed,
                }
                for (check_id, resource), state in sorted(self.findings.items())
            ],
            "history": [point.to_dict() for point in self.history],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClusterState:
        findings = {
            (item["check_id"], item["resource"]): FindingState(
                Status(item["status"]), Severity(item["severity"]), bool(item["suppressed"])
            )
            for item in data["findings"]
        }
        mut = Mut(*(data[name] for name in MUT_FIELDS))
        history = tuple(MutPoint.from_dict(point) for point in data.get("history", ()))
        return cls(readable=bool(data["readable"]), mut=mut, findings=findings, history=history)


def _suppressed(
    cluster: ClusterReport,
    finding: Finding,
    suppressions: Sequence[Suppression],
    today: datetime.date,
) -> bool:
    return any(s.active(today) and s.covers(cluster, finding) for s in suppressions)


# --- Changes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeverityRise:
    finding: Finding
    before: Severity


@dataclass(frozen=True)
class ResolvedFinding:
    check_id: str
    resource: str
    severity: Severity
    now: Status | None  # None: the finding is gone (e.g. the workload was deleted)


@dataclass(frozen=True)
class ClusterChange:
    """What changed in one cluster since the last run."""

    key: str
    cluster: ClusterReport
    before: Mut | None  # None: the cluster was never seen before (first run)
    new: tuple[Finding, ...] = ()
    severity_rose: tuple[SeverityRise, ...] = ()
    resolved: tuple[ResolvedFinding, ...] = ()
    became_unreadable: bool = False
    history: tuple[MutPoint, ...] = ()  # the MUT of the runs saved before this one

    @property
    def after(self) -> Mut:
        return Mut.of(self.cluster)

    @property
    def first_seen(self) -> bool:
        return self.before is None

    @property
    def mut_dropped(self) -> tuple[str, ...]:
        return self.before.dropped_in(self.after) if self.before else ()

    @property
    def worsened(self) -> bool:
        return bool(self.mut_dropped or self.severity_rose)

    @property
    def has_news(self) -> bool:
        return bool(self.new or self.worsened or self.resolved or self.became_unreadable)


def changes(
    previous: Mapping[str, ClusterState],
    report: Report,
    suppressions: Sequence[Suppression] = (),
) -> list[ClusterChange]:
    """One ClusterChange per cluster of the report, in report order; `has_news` says whether
    there is anything to tell. Suppressions are judged on the report's date (mutguard/clock.py)."""
    day = report.generated_at.date()
    return [
        _cluster_change(previous.get(cluster_key(c)), c, suppressions, day) for c in report.clusters
    ]


def _cluster_change(
    before: ClusterState | None,
    cluster: ClusterReport,
    suppressions: Sequence[Suppression],
    today: datetime.date,
) -> ClusterChange:
    key = cluster_key(cluster)
    history = before.history if before else ()
    if cluster.mut is None:
        # Nothing was read: no finding can be called new or resolved.
        news = before is None or before.readable
        return ClusterChange(
            key, cluster, before.mut if before else None, became_unreadable=news, history=history
        )
    seen = before.findings if before else {}
    new: list[Finding] = []
    rose: list[SeverityRise] = []
    for finding in cluster.findings:
        if finding.status is not Status.FAIL or _suppressed(cluster, finding, suppressions, today):
            continue
        last = seen.get(finding_key(finding))
        if last is None or last.status is not Status.FAIL or last.suppressed:
            new.append(finding)
        elif finding.severity.rank > last.severity.rank:
            rose.append(SeverityRise(finding, last.severity))
    return ClusterChange(
        key=key,
        cluster=cluster,
        before=before.mut if before else None,
        new=tuple(new),
        severity_rose=tuple(rose),
        resolved=_resolved(seen, cluster),
        history=history,
    )


def _resolved(
    seen: Mapping[FindingKey, FindingState], cluster: ClusterReport
) -> tuple[ResolvedFinding, ...]:
    now = {finding_key(f): f.status for f in cluster.findings}
    return tuple(
        ResolvedFinding(check_id, resource, last.severity, now.get((check_id, resource)))
        for (check_id, resource), last in seen.items()
        # Suppressed findings were never alerted, so their end is not news either.
        if last.status is Status.FAIL
        and not last.suppressed
        and now.get((check_id, resource)) in (Status.PASS, None)
    )


def next_state(
    previous: Mapping[str, ClusterState],
    report: Report,
    suppressions: Sequence[Suppression] = (),
    history_length: int = HISTORY_LENGTH,
) -> dict[str, ClusterState]:
    """The state to save for every cluster of the report (other clusters are left as they are:
    a run that scanned fewer clusters says nothing about the others), each readable cluster's
    history with this run's point added (at most `history_length` points)."""
    day = report.generated_at.date()
    return {
        cluster_key(c): _cluster_state(
            previous.get(cluster_key(c)), c, suppressions, day, report.generated_at, history_length
        )
        for c in report.clusters
    }


def _cluster_state(
    before: ClusterState | None,
    cluster: ClusterReport,
    suppressions: Sequence[Suppression],
    today: datetime.date,
    generated_at: datetime.datetime,
    history_length: int,
) -> ClusterState:
    if cluster.mut is None:
        if before is None:
            return ClusterState(readable=False, mut=Mut.of(cluster))
        return replace(before, readable=False)
    findings = {
        finding_key(f): FindingState(
            f.status,
            f.severity,
            f.status is Status.FAIL and _suppressed(cluster, f, suppressions, today),
        )
        for f in cluster.findings
    }
    history = add_point(
        before.history if before else (),
        MutPoint.of(cluster, generated_at),
        history_length,
    )
    return ClusterState(readable=True, mut=Mut.of(cluster), findings=findings, history=history)
