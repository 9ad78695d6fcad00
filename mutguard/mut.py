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
NODE_ANY = "node:any"  # root on a node of the attacker's choosing
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
        return head + self.further_steps()

    def further_steps(self) -> list[str]:
        """The steps after the start's own mistake."""
        return [edge.describe() for edge in self.edges]


@dataclass
class MutResult:
    routes: dict[StartKind, Route]
    workloads: list[Route] = field(default_factory=list)  # every workload's own route
    gains: dict[int, dict[StartKind, int]] = field(default_factory=dict)

    def mut(self, kind: StartKind) -> int:
        return self.routes[kind].mut


Adjacency = dict[str, list[tuple[Edge, int | None]]]


def _cheapest(
    start: Start, adjacency: Adjacency
) -> tuple[int, list[tuple[Edge, int | None]]] | None:
    """0-1 BFS from start.node to ADMIN with the start's own edges; the cost and edges taken."""
    local: Adjacency = {}
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


class _TowardAdmin:
    """Every node's cheapest cost to ADMIN over the shared edges: one reverse 0-1 BFS serves all
    starts that bring no edges of their own (every workload), however many there are."""

    def __init__(self, adjacency: Adjacency) -> None:
        reverse: Adjacency = {}
        for edges in adjacency.values():
            for edge, owner in edges:
                reverse.setdefault(edge.dst, []).append((edge, owner))
        self.best: dict[str, tuple[int, Edge | None, int | None]] = {ADMIN: (0, None, None)}
        queue: deque[tuple[int, str]] = deque([(0, ADMIN)])
        while queue:
            cost, node = queue.popleft()
            if cost > self.best[node][0]:
                continue
            for edge, owner in reverse.get(node, ()):
                new_cost = cost + edge.cost
                if edge.src not in self.best or new_cost < self.best[edge.src][0]:
                    self.best[edge.src] = (new_cost, edge, owner)
                    if edge.cost:
                        queue.append((new_cost, edge.src))
                    else:
                        queue.appendleft((new_cost, edge.src))

    def route(self, node: str) -> tuple[int, list[tuple[Edge, int | None]]] | None:
        if node not in self.best:
            return None
        cost, taken = self.best[node][0], []
        while node != ADMIN:
            _, edge, owner = self.best[node]
            taken.append((edge, owner))
            node = edge.dst
        return cost, taken


def _solve(
    barriers: Sequence[Edge],
    contributions: Sequence[Contribution],
    base_starts: Sequence[Start],
    excluded: int | None,
) -> list[Route]:
    """The cheapest route from every start (starts with no route to ADMIN are left out)."""
    adjacency: Adjacency = {}
    for edge in barriers:
        adjacency.setdefault(edge.src, []).append((edge, None))
    starts: list[tuple[Start, int | None]] = [(start, None) for start in base_starts]
    for contribution in contributions:
        if contribution.finding == excluded:
            continue
        for edge in contribution.edges:
            adjacency.setdefault(edge.src, []).append((edge, contribution.finding))
        starts.extend((start, contribution.finding) for start in contribution.starts)

    toward_admin = _TowardAdmin(adjacency)
    routes = []
    for start, owner in starts:
        found = _cheapest(start, adjacency) if start.edges else toward_admin.route(start.node)
        if found is None:
            continue
        cost, taken = found
        findings = {o for _, o in taken if o is not None}
        if owner is not None:
            findings.add(owner)
        mut = cost + (0 if start.kind is StartKind.INTERNET else 1)
        routes.append(Route(start, mut, tuple(e for e, _ in taken), frozenset(findings)))
    return routes


def _best_by_kind(routes: Iterable[Route]) -> dict[StartKind, Route]:
    best: dict[StartKind, Route] = {}
    for route in routes:
        current = best.get(route.start.kind)
        if current is None or route.mut < current.mut:
            best[route.start.kind] = route
    return best


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
    all_routes = _solve(barriers, contributions, base_starts, excluded=None)
    routes = _best_by_kind(all_routes)
    result = MutResult(
        routes, workloads=[r for r in all_routes if r.start.kind is StartKind.WORKLOAD]
    )
    on_a_route = {f for route in routes.values() for f in route.findings}
    for finding in sorted(on_a_route):
        fixed = _best_by_kind(_solve(barriers, contributions, base_starts, excluded=finding))
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
