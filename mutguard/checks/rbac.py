"""In-cluster RBAC checks that apply to every provider."""

from __future__ import annotations

from mutguard.checks import check, failed, passed, unknown
from mutguard.cluster import RBAC_DOC, Cluster
from mutguard.models import Area, Maturity, Provider, Severity
from mutguard.mut import ADMIN, ANONYMOUS, AUTHENTICATED, Edge
from mutguard.rbac import (
    ANONYMOUS_USER,
    AUTHENTICATED_GROUP,
    UNAUTHENTICATED_GROUP,
    admin_powers,
)

ALL_PROVIDERS = tuple(Provider)
RBAC_DOCS = "https://kubernetes.io/docs/reference/access-authn-authz/rbac/"


def _remove_binding(where: str) -> dict[Provider, str]:
    text = (
        f"Remove the subjects {where} from the binding, or delete it: `kubectl delete "
        "clusterrolebinding NAME` (or `kubectl -n NS delete rolebinding NAME`), and remove it "
        "from the manifests or chart that created it."
    )
    return dict.fromkeys(ALL_PROVIDERS, text)


def _public_admin_grants(cluster: Cluster, subjects: set[tuple[str, str]], node: str, who: str):
    if cluster.rbac is None:
        return unknown(
            f"RBAC not read: {cluster.missing(RBAC_DOC)}",
            assumption=f"authorization: RBAC not read; assumed the Kubernetes default policy "
            f"(no admin-equivalent grant to {who})",
        )
    outcomes = []
    for binding in cluster.rbac.bindings:
        if not binding.cluster_wide:
            continue
        matched = [s for s in binding.subjects if (s.kind, s.name) in subjects]
        if not matched:
            continue
        powers = admin_powers(cluster.rbac.rules_of(binding) or ())
        if powers:
            names = ", ".join(s.name for s in matched)
            role = f"{binding.role_kind} {binding.role_name}"
            outcomes.append(
                failed(
                    f"{binding} grants {role} to {names}: {'; '.join(powers)}",
                    str(binding),
                    edges=[
                        Edge(node, ADMIN, 0, "authorization", f"{binding} grants {role} to {names}")
                    ],
                )
            )
    return outcomes or passed(f"no cluster-wide binding gives {who} admin-equivalent power")


@check(
    id="rbac.anonymous_admin",
    title="Anonymous users hold no admin-equivalent power",
    severity=Severity.CRITICAL,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="A binding to system:anonymous or system:unauthenticated gives its power to anyone "
    "who can reach the API server, with no credential at all.",
    remediation=_remove_binding("system:anonymous / system:unauthenticated"),
    references=[RBAC_DOCS],
)
def anonymous_admin(cluster: Cluster):
    subjects = {("User", ANONYMOUS_USER), ("Group", UNAUTHENTICATED_GROUP)}
    return _public_admin_grants(cluster, subjects, ANONYMOUS, "anonymous users")


@check(
    id="rbac.authenticated_admin",
    title="Every authenticated user holds no admin-equivalent power",
    severity=Severity.CRITICAL,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="A binding to system:authenticated gives its power to every identity the cluster "
    "accepts: every service account, every node, every user of the identity provider.",
    remediation=_remove_binding("system:authenticated"),
    references=[RBAC_DOCS],
)
def authenticated_admin(cluster: Cluster):
    subjects = {("Group", AUTHENTICATED_GROUP)}
    return _public_admin_grants(cluster, subjects, AUTHENTICATED, "authenticated users")
