"""The barrier facts a provider's parser may report (`barriers(cluster) -> Barriers` in its
module, mutguard.provider_api): where its platform's attack graph before any mistake differs
from plain Kubernetes. They are data; the core turns them into edges (`scan._graph_facts`), so
graph policy, costs and stages stay in one place. Stdlib only.
"""

from __future__ import annotations

from dataclasses import dataclass

from mutguard.mut import Edge


@dataclass(frozen=True)
class GatedGroup:
    """A public group the platform refuses new bindings to until someone allows them."""

    node: str  # the group's graph node: identity:authenticated
    group: str  # system:authenticated
    gate: str  # the graph node of "bindings to it are allowed"
    platform: str  # who refuses: GKE
    setting: str  # what allows them: rbacBindingConfig


@dataclass(frozen=True)
class NodeIdentity:
    """The cloud identity that root on a node of a pool holds, and why it is no admin yet."""

    pool: str
    node: str  # its graph node
    label: str  # the Compute Engine default service account
    credential_source: str  # where root on a node reads its token: the metadata server
    no_admin_because: str  # why reaching admin from it takes one more mistake

    def credential_edge(self, source: str, who: str) -> Edge:
        """`who` (standing at graph node `source`) reads this identity's token."""
        return Edge(
            source,
            self.node,
            0,
            "credential",
            f"{who} reads the token of {self.label} from {self.credential_source}",
        )


@dataclass(frozen=True)
class Barriers:
    """Where a platform's graph before any mistake differs from plain Kubernetes (mut.BASE_EDGES).

    `open_authentication` names who authenticates as system:authenticated without a credential
    of the cluster's own ("any Google account"); `gated_groups` are the public groups whose
    bindings need a gate opened first; `node_identities` the pools' identities, and `nodes` the
    known nodes (by name, in order) with the identity of their pool.
    """

    open_authentication: str | None = None
    gated_groups: tuple[GatedGroup, ...] = ()
    node_identities: tuple[NodeIdentity, ...] = ()
    nodes: tuple[tuple[str, NodeIdentity], ...] = ()
