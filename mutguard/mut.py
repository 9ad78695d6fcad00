"""Mess-up tolerance: the cheapest path through barriers to admin-equivalent power.

The attack graph has nodes (where an attacker stands or whom they act as) and edges costing 0 or 1
mess-up. The base graph holds one barrier edge of cost 1 per barrier: what a hardened cluster
still demands of an attacker. Each FAIL finding adds the edges (or starting points) its mistake
opens, so a check states its impact where it is written and the engine never learns check ids.

MUT from a starting point is the 0-1 BFS distance to ADMIN (plus 1 for workload and credential
starts: the exploited app or the leak is itself a mistake). A finding's mut_gain is the rise in MUT
when its contributions are taken out; only findings on a cheapest path can raise it, so only
those are recomputed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

INTERNET = "internet"
API = "api"
ANONYMOUS = "identity:anonymous"  # user system:anonymous, group system:unauthenticated
AUTHENTICATED = "identity:authenticated"  # anyone in group system:authenticated
USER = "identity:user"  # one identity the cluster trusts: a user, a service account
POD = "pod"  # code running in some pod: the cluster network, the pod's token
SERVICE_ACCOUNTS = "group:system:serviceaccounts"  # every pod's token is in it
ADMIN = "admin"


class StartKind(StrEnum):
    INTERNET = "internet"
    WORKLOAD = "workload"
    CREDENTIAL = "credential"


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    cost: int
    stage: str
    why: str

    def __post_init__(self) -> None:
        if self.cost not in (0, 1):
            raise ValueError(f"an edge costs 0 or 1 mess-up, not {self.cost}")

    def describe(self) -> str:
        return f"{self.stage} ({self.cost}): {self.why}"


@dataclass(frozen=True)
class Start:
    """A starting point; `edges` are usable only from it (what a leaked credential grants)."""

    kind: StartKind
    label: str
    node: str
    why: str
    edges: tuple[Edge, ...] = ()


@dataclass(frozen=True)
class Contribution:
    """What one FAIL finding adds to the graph; `finding` is its index in the cluster's findings."""

    finding: int
    edges: tuple[Edge, ...] = ()
    starts: tuple[Start, ...] = ()


BASE_EDGES = (
    Edge(
        INTERNET,
        API,
        1,
        "network",
        "the API endpoint is not open to the internet: one mistake (a widened allow-list, a "
        "foothold in an allowed network) is needed to reach it",
    ),
    Edge(
        API,
        USER,
        1,
        "authentication",
        "a valid credential is needed: one mistake (a leaked or phished credential) to get one",
    ),
    Edge(USER, AUTHENTICATED, 0, "authentication", "every identity is in system:authenticated"),
    Edge(
        USER,
        ADMIN,
        1,
        "authorization",
        "an ordinary identity holds no admin-equivalent power: one bad RBAC binding is needed",
    ),
    Edge(
        AUTHENTICATED,
        ADMIN,
        1,
        "authorization",
        "system:authenticated holds no admin-equivalent power: one bad RBAC binding is needed",
    ),
    Edge(
        ANONYMOUS,
        ADMIN,
        1,
        "authorization",
        "anonymous users hold no admin-equivalent power: one bad RBAC binding is needed",
    ),
    Edge(POD, API, 0, "network", "the pod is inside the cluster network"),
    Edge(POD, USER, 0, "authentication", "the pod's service-account token authenticates"),
    Edge(POD, SERVICE_ACCOUNTS, 0, "authentication", "the pod's token is a service account's"),
)

INTERNET_START = Start(StartKind.INTERNET, "internet", INTERNET, "anyone on the internet")
ANY_CREDENTIAL_START = Start(
    StartKind.CREDENTIAL,
    "credential:any",
    INTERNET,
    "an ordinary user's credential leaks",
    edges=(Edge(API, USER, 0, "authentication", "the leaked credential authenticates"),),
)
ANY_WORKLOAD_START = Start(
    StartKind.WORKLOAD, "workload:any", POD, "the app in one pod is exploited"
)


@dataclass(frozen=True)
class Route:
    """The cheapest route found from one start; `mut` includes the start's own mistake."""

    start: Start
    mut: int
    edges: tuple[Edge, ...]
    findings: frozenset[int]

    def steps(self) -> list[str]:
        head = [] if self.start.kind is StartKind.INTERNET else [f"start (1): {self.start.why}"]
        return head + [edge.describe() for edge in self.edges]


@dataclass
class MutResult:
    routes: dict[StartKind, Route]
    gains: dict[int, dict[StartKind, int]] = field(default_factory=dict)

    def mut(self, kind: StartKind) -> int:
        return self.routes[kind].mut


def _cheapest(
    start: Start, adjacency: dict[str, list[tuple[Edge, int | None]]]
) -> tuple[int, list[tuple[Edge, int | None]]] | None:
    """0-1 BFS from start.node to ADMIN; returns the cost and the edges taken."""
    local: dict[str, list[tuple[Edge, int | None]]] = {}
    for edge in start.edges:
        local.setdefault(edge.src, []).append((edge, None))
    best = {start.node: 0}
    came_by: dict[str, tuple[str, Edge, int | None]] = {}
    queue: deque[tuple[int, str]] = deque([(0, start.node)])
    while queue:
        cost, node = queue.popleft()
        if cost > best.get(node, cost):
            continue
        if node == ADMIN:
            break
        for edge, owner in (*adjacency.get(node, ()), *local.get(node, ())):
            new_cost = cost + edge.cost
            if new_cost < best.get(edge.dst, new_cost + 1):
                best[edge.dst] = new_cost
                came_by[edge.dst] = (node, edge, owner)
                if edge.cost:
                    queue.append((new_cost, edge.dst))
                else:
                    queue.appendleft((new_cost, edge.dst))
    if ADMIN not in best:
        return None
    taken: list[tuple[Edge, int | None]] = []
    node = ADMIN
    while node != start.node:
        node, edge, owner = came_by[node]
        taken.append((edge, owner))
    taken.reverse()
    return best[ADMIN], taken


def _solve(
    barriers: Sequence[Edge],
    contributions: Sequence[Contribution],
    base_starts: Sequence[Start],
    excluded: int | None,
) -> dict[StartKind, Route]:
    adjacency: dict[str, list[tuple[Edge, int | None]]] = {}
    for edge in barriers:
        adjacency.setdefault(edge.src, []).append((edge, None))
    starts: list[tuple[Start, int | None]] = [(start, None) for start in base_starts]
    for contribution in contributions:
        if contribution.finding == excluded:
            continue
        for edge in contribution.edges:
            adjacency.setdefault(edge.src, []).append((edge, contribution.finding))
        starts.extend((start, contribution.finding) for start in contribution.starts)

    routes: dict[StartKind, Route] = {}
    for start, owner in starts:
        found = _cheapest(start, adjacency)
        if found is None:
            continue
        cost, taken = found
        mut = cost + (0 if start.kind is StartKind.INTERNET else 1)
        current = routes.get(start.kind)
        if current is None or mut < current.mut:
            findings = {o for _, o in taken if o is not None}
            if owner is not None:
                findings.add(owner)
            routes[start.kind] = Route(start, mut, tuple(e for e, _ in taken), frozenset(findings))
    return routes


def compute(
    contributions: Sequence[Contribution],
    workload_starts: Iterable[Start] = (),
    barriers: Sequence[Edge] = BASE_EDGES,
) -> MutResult:
    """MUT from every kind of start, and the gain of fixing each contributing finding.

    `barriers` are the edges a cluster has before any mistake (a provider may differ from
    BASE_EDGES: on GKE any Google account is already authenticated). Without known workloads
    the generic `workload:any` start stands in for them.
    """
    workload_starts = list(workload_starts) or [ANY_WORKLOAD_START]
    base_starts = [INTERNET_START, ANY_CREDENTIAL_START, *workload_starts]
    routes = _solve(barriers, contributions, base_starts, excluded=None)
    result = MutResult(routes)
    on_a_route = {f for route in routes.values() for f in route.findings}
    for finding in sorted(on_a_route):
        fixed = _solve(barriers, contributions, base_starts, excluded=finding)
        result.gains[finding] = {
            kind: fixed[kind].mut - route.mut
            for kind, route in routes.items()
            if finding in route.findings and fixed[kind].mut > route.mut
        }
    return result


def admin_credential(what: str) -> Start:
    """A credential that is cluster admin on its own: its leak needs only the network."""
    return Start(
        StartKind.CREDENTIAL,
        f"credential:{what}",
        INTERNET,
        f"{what} leaks",
        edges=(Edge(API, ADMIN, 0, "authorization", f"{what} is cluster admin on its own"),),
    )
