"""Turn collected clusters into reports: parse, run the catalogue, compute MUT and grades.

Nothing here raises for one cluster's bad data: a cluster that cannot be parsed becomes a report
with its error, a check that crashes becomes an ERROR finding, and the other clusters go on.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from mutguard import providers, workloads
from mutguard.barriers import Barriers
from mutguard.checks import Check, Outcome, catalogue
from mutguard.checks.rbac import grant_edges
from mutguard.cluster import Cluster
from mutguard.errors import InputError
from mutguard.models import (
    GRADED_AREAS,
    Area,
    AttackPath,
    BlastRadius,
    ClusterReport,
    Finding,
    Grade,
    Maturity,
    MaturityGrades,
    PlatformGrant,
    Report,
    Status,
)
from mutguard.mut import (
    ADMIN,
    API,
    AUTHENTICATED,
    BASE_EDGES,
    NODE_ANY,
    Contribution,
    Edge,
    MutResult,
    Start,
    StartKind,
    compute,
)
from mutguard.sources import CLUSTER_DOC, ClusterSource, ScanError

log = logging.getLogger(__name__)

_MUT_FIELDS = {
    StartKind.INTERNET: "mut",
    StartKind.WORKLOAD: "mut_workload",
    StartKind.CREDENTIAL: "mut_credential",
}
_STATUS_ORDER = {Status.FAIL: 0, Status.ERROR: 1, Status.UNKNOWN: 2, Status.PASS: 3}
_LEVELS = (Maturity.CRAWL, Maturity.WALK, Maturity.RUN)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Analysis allocates many small objects and no reference cycles; left running, the cyclic
    collector re-scans the whole input again and again, which makes large clusters superlinear.
    Reference counting still frees everything; cycles wait until the cluster is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def evaluate(source: ClusterSource, observed_at: datetime) -> ClusterReport:
    """One cluster's report; never raises for the cluster's own data. The source's documents
    are used up as they are parsed (a large RBAC List object by object), so evaluate a source
    once."""
    with _cyclic_gc_paused():
        return _evaluate(source, observed_at)


def _evaluate(source: ClusterSource, observed_at: datetime) -> ClusterReport:
    if CLUSTER_DOC not in source.documents:
        return _error_report(source, source.errors.get(CLUSTER_DOC, f"{CLUSTER_DOC} missing"))
    try:
        cluster = providers.parser(source.provider).parse(source, observed_at)
    except InputError as exc:
        return _error_report(source, f"cluster {source.name}: {exc}")
    # The parsed cluster holds all the checks read; a large cluster's raw documents are most of
    # its memory, which the analysis can then reuse.
    source.documents.clear()
    return assess(cluster)


def assess(cluster: Cluster) -> ClusterReport:
    """Run the provider's checks, then MUT over what their FAILs open, then the grades."""
    checks = catalogue(cluster.provider)
    results = [(check, outcome) for check in checks for outcome in _run(check, cluster)]
    findings, contributions = _findings(cluster, results)
    barriers, starts = _graph_facts(cluster)
    result = compute(contributions, starts, barriers)
    for index, gains in result.gains.items():
        if gains:
            findings[index].mut_gain = max(gains.values())
            findings[index].mut_gain_from = [kind.value for kind in gains]
    assumptions = list(dict.fromkeys(o.assumption for _, o in results if o.assumption))
    bounded = {kind for _, o in results if o.assumption for kind in o.assumption_affects}
    if cluster.rbac is not None:
        assumptions.append(f"authorization: read from RBAC ({len(cluster.rbac.bindings)} bindings)")
    return ClusterReport(
        name=cluster.name,
        provider=cluster.provider,
        location=cluster.location,
        account=cluster.account,
        arn_or_id=cluster.arn_or_id,
        **{field: result.mut(kind) for kind, field in _MUT_FIELDS.items()},
        mut_upper_bound=[_MUT_FIELDS[kind] for kind in StartKind if kind in bounded],
        mut_basis=assumptions,
        paths=_paths(result),
        blast_radius=_blast_radius(result) if cluster.workloads is not None else [],
        maturity=_grades(results),
        findings=sorted(findings, key=_finding_order),
        platform_grants=_platform_grants(cluster),
        errors=[f"{doc}: {why}" for doc, why in sorted(cluster.collection_errors.items())],
    )


def _findings(
    cluster: Cluster, results: list[tuple[Check, Outcome]]
) -> tuple[list[Finding], list[Contribution]]:
    """A finding per outcome, in the order of `results`, and the graph edges the outcomes
    open, each tagged with its finding's index (for its MUT gain)."""
    findings: list[Finding] = []
    contributions: list[Contribution] = []
    for index, (check, outcome) in enumerate(results):
        findings.append(
            Finding(
                check_id=check.meta.id,
                status=outcome.status,
                resource=outcome.resource or cluster.arn_or_id,
                detail=outcome.detail,
                mut_gain=0 if outcome.status is Status.FAIL else None,
                check=check.summary(cluster.provider),
                provider=cluster.provider,
            )
        )
        if outcome.edges or outcome.starts:
            contributions.append(Contribution(index, outcome.edges, outcome.starts))
    return findings, contributions


def _blast_radius(result: MutResult) -> list[BlastRadius]:
    """What each workload reaches, lowest MUT first."""
    # Workloads share most of their routes: one string per distinct step, not one per workload.
    texts: dict[str, str] = {}
    return [
        BlastRadius(
            workload=route.start.label.removeprefix("workload:"),
            mut=route.mut,
            steps=[texts.setdefault(step, step) for step in route.further_steps()],
        )
        for route in sorted(result.workloads, key=lambda r: (r.mut, r.start.label))
    ]


def _platform_grants(cluster: Cluster) -> list[PlatformGrant]:
    """The dangerous powers the platform's own bindings hold, which no check reports."""
    if cluster.rbac is None:
        return []
    return [
        PlatformGrant(
            binding=" together with ".join(str(b) for b in (g.binding, *g.together_with)),
            subject=str(g.subject),
            power=g.power.what + (f" in namespace {g.namespace}" if g.namespace else ""),
            why=g.note or "every binding it comes through is the platform's own",
        )
        for g in cluster.rbac.grants()
        if g.platform
    ]


def _graph_facts(cluster: Cluster) -> tuple[list[Edge], list[Start]]:
    """The edges that hold before any mistake, and a start for every known workload."""
    barriers = _barrier_edges(providers.PROVIDERS.get(cluster.provider).barriers(cluster))
    if cluster.rbac is not None:
        # The platform's grants are no findings, but they hold: a start that reaches one of its
        # subjects (GKE's kubelet credential, say) goes on from there.
        barriers += [edge for g in cluster.rbac.grants() if g.platform for edge in grant_edges(g)]
    if cluster.workloads is None:
        return barriers, []
    reported = cluster.rbac.powerful_service_accounts() if cluster.rbac else frozenset()
    barriers += workloads.attack_edges(cluster.workloads, reported)
    return barriers, [workloads.start(w) for w in cluster.workloads.items]


def _barrier_edges(facts: Barriers) -> list[Edge]:
    """BASE_EDGES, as the platform's barrier facts change them."""
    gated = {(group.node, ADMIN) for group in facts.gated_groups}
    edges = [edge for edge in BASE_EDGES if (edge.src, edge.dst) not in gated]
    if facts.open_authentication is not None:
        edges.append(
            Edge(
                API,
                AUTHENTICATED,
                0,
                "authentication",
                f"{facts.open_authentication} authenticates as system:authenticated",
            )
        )
    for group in facts.gated_groups:
        edges += [
            Edge(
                group.node,
                group.gate,
                1,
                "authorization",
                f"{group.platform} rejects new bindings to {group.group}: someone must first "
                f"allow them ({group.setting})",
            ),
            Edge(
                group.gate,
                ADMIN,
                1,
                "authorization",
                f"then one bad binding to {group.group} is needed",
            ),
        ]
    for identity in facts.node_identities:
        edges += [
            identity.credential_edge(NODE_ANY, f"root on a node of pool {identity.pool}"),
            Edge(
                identity.node,
                ADMIN,
                1,
                "authorization",
                f"{identity.label} (pool {identity.pool}) holds no admin power over the cluster: "
                f"{identity.no_admin_because}",
            ),
        ]
    edges += [
        identity.credential_edge(f"node:{node}", f"root on {node} (pool {identity.pool})")
        for node, identity in facts.nodes
    ]
    return edges


def _run(check: Check, cluster: Cluster) -> list[Outcome]:
    try:
        produced = check.run(cluster)
        if produced is None:
            return []
        return [produced] if isinstance(produced, Outcome) else list(produced)
    except Exception as exc:  # a crashing check must not hide the other checks or clusters
        log.warning("check %s failed on cluster %s: %r", check.meta.id, cluster.name, exc)
        return [Outcome(Status.ERROR, f"check failed on cluster {cluster.name}: {exc!r}")]


def _paths(result: MutResult) -> list[AttackPath]:
    return [
        AttackPath(from_=route.start.label, mut=route.mut, steps=route.steps())
        for kind in StartKind
        if (route := result.routes.get(kind)) is not None
    ]


def _grades(results: list[tuple[Check, Outcome]]) -> MaturityGrades:
    """Per area, the highest level whose checks all PASS, every level below it too (a check
    counts with its worst outcome); NONE when a crawl check FAILs."""
    worst: dict[str, tuple[Check, Status]] = {}
    for check, outcome in results:
        seen = worst.get(check.meta.id)
        if seen is None or _STATUS_ORDER[outcome.status] < _STATUS_ORDER[seen[1]]:
            worst[check.meta.id] = (check, outcome.status)
    statuses: dict[tuple[Area, Maturity], set[Status]] = {}
    for check, status in worst.values():
        statuses.setdefault((check.meta.area, check.meta.maturity), set()).add(status)
    grades = {}
    for area in GRADED_AREAS:
        grade = Grade.UNKNOWN
        for level in _LEVELS:
            found = statuses.get((area, level))
            if not found:
                break
            if Status.FAIL in found:
                grade = Grade.NONE if level is Maturity.CRAWL else grade
                break
            if found != {Status.PASS}:
                break
            grade = Grade(level.value)
        grades[area.value] = grade
    return MaturityGrades(**grades)


def _finding_order(finding: Finding) -> tuple:
    return (
        _STATUS_ORDER[finding.status],
        -(finding.mut_gain or 0),
        -finding.severity.rank,
        finding.check_id,
        finding.resource,
    )


def _error_report(source: ClusterSource, message: str) -> ClusterReport:
    log.warning("cluster %s could not be assessed: %s", source.name, message)
    return ClusterReport(
        name=source.name,
        provider=source.provider,
        location=source.location,
        account=source.account,
        arn_or_id=source.name,
        mut=None,
        mut_workload=None,
        mut_credential=None,
        mut_basis=[],
        paths=[],
        maturity=MaturityGrades(**dict.fromkeys((a.value for a in GRADED_AREAS), Grade.UNKNOWN)),
        findings=[],
        errors=[message],
    )


def build_report(items: Iterable[ClusterSource | ScanError], generated_at: datetime) -> Report:
    clusters: list[ClusterReport] = []
    errors: list[ScanError] = []
    for item in items:
        if isinstance(item, ScanError):
            errors.append(item)
        else:
            clusters.append(evaluate(item, generated_at))
    return Report(generated_at=generated_at, clusters=clusters, errors=errors)
