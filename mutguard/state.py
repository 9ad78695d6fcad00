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

Stores: `StateStore` is the protocol (load the last state of some clusters, save new states,
claim and release alerts); the stores themselves are in mutguard/publish/ (SQLite, the default
for the CLI, in sqlite.py). Cloud stores map `ClusterState.to_dict()` / `from_dict()` onto their
items. Suppressions are in mutguard/suppressions.py.

Claims: two runs publishing the same report at the same time both load the old state before
either saves, so both would send the same alerts. Before sending, a run claims each alert with a
conditional write (create only if absent) of a `ClaimKey`: (cluster key, the report's
generated_at and a fingerprint of the state it goes from and to; see dispatch.claim_keys). Of
the runs of one report exactly one wins; runs of different reports never meet. Claims are kept
CLAIM_DAYS, well past the end of any run that could contend.
"""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from mutguard import clock
from mutguard.errors import StoreError
from mutguard.models import ClusterReport, Finding, Report, Severity, Status, cluster_key
from mutguard.suppressions import Suppression

FindingKey = tuple[str, str]  # (check_id, resource)
# (cluster key, or DIGEST_CLAIM for a whole digest; "<the report's generated_at>/<fingerprint>")
ClaimKey = tuple[str, str]
DIGEST_CLAIM = "digest"
CLAIM_DAYS = 7  # how long a claim is kept (the cloud stores let their TTL or lifecycle drop it)
MUT_FIELDS = ("mut", "mut_workload", "mut_credential")


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
        return cls(readable=bool(data["readable"]), mut=mut, findings=findings)


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
    if cluster.mut is None:
        # Nothing was read: no finding can be called new or resolved.
        news = before is None or before.readable
        return ClusterChange(key, cluster, before.mut if before else None, became_unreadable=news)
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
) -> dict[str, ClusterState]:
    """The state to save for every cluster of the report (other clusters are left as they are:
    a run that scanned fewer clusters says nothing about the others)."""
    day = report.generated_at.date()
    return {
        cluster_key(c): _cluster_state(previous.get(cluster_key(c)), c, suppressions, day)
        for c in report.clusters
    }


def _cluster_state(
    before: ClusterState | None,
    cluster: ClusterReport,
    suppressions: Sequence[Suppression],
    today: datetime.date,
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
    return ClusterState(readable=True, mut=Mut.of(cluster), findings=findings)


# --- Stores -------------------------------------------------------------------------------


class StateStore(Protocol):
    def load(self, keys: Iterable[str]) -> dict[str, ClusterState]:
        """The last saved state of each of these clusters that has one."""
        ...

    def save(self, states: Mapping[str, ClusterState]) -> None:
        """Replace the state of these clusters (others are kept)."""
        ...

    def load_suppressions(self) -> str | None:
        """The suppressions document kept in the store (the YAML text `mutguard suppressions
        push` saved), or None when the store holds none."""
        ...

    def save_suppressions(self, document: str) -> None:
        """Keep this suppressions document (YAML text, already validated), replacing any other."""
        ...

    def claim(self, keys: Iterable[ClaimKey]) -> set[ClaimKey]:
        """Claim these alerts for this run, each with a conditional write that succeeds for one
        run only; the keys this run won (the others are held by another run of the report)."""
        ...

    def release(self, keys: Iterable[ClaimKey]) -> None:
        """Give up claims this run won but could not deliver, so that a later run sends them."""
        ...


def claim_each(
    store: StateStore, keys: Iterable[ClaimKey], claim_one: Callable[[ClaimKey], bool]
) -> set[ClaimKey]:
    """Claim keys one conditional write each (`claim_one`: True when this run's write made it).
    When a write fails, what was won is given back before the error goes on: the run stops
    there, so those claims would hold an alert nobody sends."""
    won: set[ClaimKey] = set()
    try:
        for key in dict.fromkeys(keys):
            if claim_one(key):
                won.add(key)
    except StoreError:
        give_back(store, won)
        raise
    return won


def give_back(store: StateStore, won: Iterable[ClaimKey]) -> None:
    """Release claims a store won before claiming the rest failed (that failure is what the
    run reports, so failing to release too is not raised)."""
    with contextlib.suppress(StoreError):
        store.release(won)


def claim_cutoff() -> datetime.datetime:
    """Claims made before this are old enough to drop."""
    return clock.now() - datetime.timedelta(days=CLAIM_DAYS)
