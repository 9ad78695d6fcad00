"""In-cluster RBAC checks that apply to every provider.

Each dangerous power (see mutguard.rbac.powers) is one check; who holds it comes from the
effective grants of every binding and every subject. Grants to groups everyone is in (anonymous
users, every authenticated identity, every service account) have checks of their own, because
their holders need no stolen credential. Grants through the platform's own bindings, recognised
by their whole content (mutguard.platform_rbac), are not findings; a name or label is no proof.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mutguard.checks import Outcome, check, failed, passed, passed_unless_unread, unknown
from mutguard.cluster import Cluster
from mutguard.models import Area, Maturity, Provider, Remediation, Severity
from mutguard.mut import (
    ADMIN,
    ANONYMOUS,
    AUTHENTICATED,
    NODE_ANY,
    SERVICE_ACCOUNTS,
    Edge,
    admin_credential,
)
from mutguard.rbac import Grant, Reach, Subject, UnreadObject, is_public, subject_node
from mutguard.sources import RBAC_DOC

ALL_PROVIDERS = tuple(Provider)
RBAC_DOCS = "https://kubernetes.io/docs/reference/access-authn-authz/rbac/"
GOOD_PRACTICES = "https://kubernetes.io/docs/concepts/security/rbac-good-practices/"


def grant_text(grant: Grant) -> str:
    where = f" in namespace {grant.namespace}" if grant.namespace else ""
    default = " (the namespace's default service account)" if _is_default_sa(grant.subject) else ""
    through = " together with ".join(
        f"{binding} ({binding.role_kind} {binding.role_name})"
        for binding in (grant.binding, *grant.together_with)
    )
    note = f" ({grant.note})" if grant.note and not grant.platform else ""
    return f"{through}{note} lets {grant.subject}{default} {grant.power.what}{where}"


def _is_default_sa(subject: Subject) -> bool:
    return subject.kind == "ServiceAccount" and subject.name == "default"


def grant_edges(grant: Grant) -> list[Edge]:
    """The attack-graph edges a grant opens; a power short of admin needs one more mistake."""
    source, why = subject_node(grant.subject), grant_text(grant)
    if grant.power.reach is Reach.ADMIN:
        return [Edge(source, ADMIN, 0, "authorization", why)]
    if grant.power.reach is Reach.NAMESPACE:
        namespace = f"namespace:{grant.namespace}"
        return [
            Edge(source, namespace, 0, "authorization", why),
            Edge(
                namespace,
                ADMIN,
                1,
                "authorization",
                f"acting as {grant.namespace}'s service accounts is not yet admin: one more "
                "mistake (a powerful service account or a privileged pod there) is needed",
            ),
        ]
    if grant.power.reach is Reach.NODE:
        return [
            Edge(source, NODE_ANY, 0, "authorization", why),
            Edge(
                NODE_ANY,
                ADMIN,
                1,
                "authorization",
                "root on a node is not yet admin: one more mistake (an admin token on it)",
            ),
        ]
    return []


def _starts(grant: Grant):
    """A user or group that is admin on its own: one leaked credential of it is enough."""
    if grant.power.reach is Reach.ADMIN and grant.subject.kind in ("User", "Group"):
        return [admin_credential(f"{grant.subject} ({grant.power.what})")]
    return []


def _rbac_unknown(cluster: Cluster, who: str):
    return unknown(
        f"RBAC not read: {cluster.missing(RBAC_DOC)}",
        assumption=f"authorization: RBAC not read; assumed the Kubernetes default policy "
        f"(no dangerous grant to {who})",
    )


def none_granted(cluster: Cluster, nothing: str) -> Outcome:
    """What a check that found no grant says: PASS, unless objects of rbac.json were skipped as
    malformed, which may hold the very grant it looks for."""
    unread = len(cluster.rbac.unread) if cluster.rbac is not None else 0
    return passed_unless_unread(nothing, unread, RBAC_DOC, "rbac.unread_objects")


def _findings(cluster: Cluster, selected: Callable[[Grant], bool], nothing: str):
    outcomes = [
        failed(
            grant_text(grant), str(grant.binding), edges=grant_edges(grant), starts=_starts(grant)
        )
        for grant in cluster.rbac.grants()
        if selected(grant)
    ]
    return outcomes or none_granted(cluster, nothing)


COLLECT_AGAIN = dict.fromkeys(
    ALL_PROVIDERS,
    Remediation(
        summary="Collect rbac.json again from the cluster, unedited.",
        cli="kubectl get clusterroles,clusterrolebindings,roles,rolebindings -A -o json",
    ),
)
# A ClusterRoleBinding, or a RoleBinding in its namespace.
DELETE_BINDING = "kubectl delete clusterrolebinding NAME\nkubectl -n NS delete rolebinding NAME"


def _remove_binding(subjects: str) -> dict[Provider, Remediation]:
    fix = Remediation(
        summary=f"Remove {subjects} from the binding, or delete it, and remove it from the "
        "manifests or chart that created it; grant a narrower role instead.",
        cli=DELETE_BINDING,
    )
    return dict.fromkeys(ALL_PROVIDERS, fix)


def _public_admin(node: str) -> Callable[[Grant], bool]:
    return lambda g: subject_node(g.subject) == node and g.power.reach is Reach.ADMIN


NO_ANONYMOUS_ADMIN = "no binding gives anonymous users admin-equivalent power"


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
    pass_detail=NO_ANONYMOUS_ADMIN,
)
def anonymous_admin(cluster: Cluster):
    if cluster.rbac is None:
        return _rbac_unknown(cluster, "anonymous users")
    return _findings(cluster, _public_admin(ANONYMOUS), NO_ANONYMOUS_ADMIN)


NO_AUTHENTICATED_ADMIN = "no binding gives every authenticated user admin-equivalent power"


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
    pass_detail=NO_AUTHENTICATED_ADMIN,
)
def authenticated_admin(cluster: Cluster):
    if cluster.rbac is None:
        return _rbac_unknown(cluster, "authenticated users")
    return _findings(
        cluster,
        _public_admin(AUTHENTICATED),
        NO_AUTHENTICATED_ADMIN,
    )


NO_SERVICEACCOUNTS_ADMIN = "no binding gives every service account admin-equivalent power"


@check(
    id="rbac.serviceaccounts_admin",
    title="Service accounts as a group hold no admin-equivalent power",
    severity=Severity.CRITICAL,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="A binding to system:serviceaccounts (or system:serviceaccounts:NS) gives its power "
    "to the token of every pod: one exploited app anywhere is then cluster-admin.",
    remediation=_remove_binding("system:serviceaccounts"),
    references=[RBAC_DOCS, GOOD_PRACTICES],
    pass_detail=NO_SERVICEACCOUNTS_ADMIN,
)
def serviceaccounts_admin(cluster: Cluster):
    if cluster.rbac is None:
        return _rbac_unknown(cluster, "service accounts as a group")
    return _findings(
        cluster,
        _public_admin(SERVICE_ACCOUNTS),
        NO_SERVICEACCOUNTS_ADMIN,
    )


ONLY_DISCOVERY_FOR_EVERYONE = "groups everyone is in hold only the default discovery permissions"


@check(
    id="rbac.public_group_grant",
    title="Groups everyone is in hold no dangerous power",
    severity=Severity.HIGH,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="Grants to system:anonymous, system:unauthenticated, system:authenticated or "
    "system:serviceaccounts need no stolen credential: any power short of admin there is one "
    "mistake from becoming admin for everyone.",
    remediation=_remove_binding("the public group"),
    references=[RBAC_DOCS, GOOD_PRACTICES],
    pass_detail=ONLY_DISCOVERY_FOR_EVERYONE,
)
def public_group_grant(cluster: Cluster):
    if cluster.rbac is None:
        return _rbac_unknown(cluster, "public groups")
    return _findings(
        cluster,
        lambda g: is_public(g.subject) and g.power.reach is not Reach.ADMIN,
        ONLY_DISCOVERY_FOR_EVERYONE,
    )


NO_DANGLING_BINDING = "every binding names a role that exists"


@check(
    id="rbac.dangling_binding",
    title="Every binding names a role that exists",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=ALL_PROVIDERS,
    rationale="The authorizer resolves a binding's roleRef at every request, and the API server "
    "stores a binding whose role does not exist. Such a binding grants nothing today and "
    "everything the role will hold once someone creates it: a reinstalled chart or a "
    "`kubectl create clusterrole` with an old name then hands that power to the subjects, "
    "unreviewed.",
    remediation=dict.fromkeys(
        ALL_PROVIDERS,
        Remediation(
            summary="Delete the binding and remove it from the manifests or chart that created "
            "it; if the role is meant to come back, recreate the binding together with it, with "
            "reviewed subjects.",
            cli=DELETE_BINDING,
        ),
    ),
    references=[RBAC_DOCS, GOOD_PRACTICES],
    pass_detail=NO_DANGLING_BINDING,
)
def dangling_binding(cluster: Cluster):
    # No attack-graph edge: creating the role needs `create` on roles and, by the API server's
    # escalation check, either every permission the role holds or `escalate`; whoever can do
    # that already holds the power the binding would pass on.
    if cluster.rbac is None:
        return _rbac_unknown(cluster, "bindings of missing roles")
    outcomes = [
        unknown(
            f"{binding} binds {binding.role_kind} {binding.role_name}, which is not among the "
            "roles read: it may be one of the objects that could not be read",
            str(binding),
        )
        if cluster.rbac.role_may_be_unread(binding)
        else failed(
            f"{binding} binds {binding.role_kind} {binding.role_name}, which does not exist, to "
            f"{', '.join(str(s) for s in binding.subjects)}: whoever creates that role grants "
            "its rules to them",
            str(binding),
        )
        for binding in cluster.rbac.dangling_bindings()
    ]
    return outcomes or none_granted(cluster, NO_DANGLING_BINDING)


NO_DUPLICATE_OBJECTS = "no role or binding is listed twice"


@check(
    id="rbac.duplicate_objects",
    title="rbac.json lists every role and binding once",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.WALK,
    providers=ALL_PROVIDERS,
    rationale="An API server never lists two objects of one kind, namespace and name: an rbac.json "
    "that does was edited or merged, and which copy is real cannot be told. Both are judged, so "
    "a grant in either is reported and MUT is the worse of the two.",
    remediation=COLLECT_AGAIN,
    references=[RBAC_DOCS],
    pass_detail=NO_DUPLICATE_OBJECTS,
)
def duplicate_objects(cluster: Cluster):
    if cluster.rbac is None:
        return unknown(f"RBAC not read: {cluster.missing(RBAC_DOC)}")
    # UNKNOWN without an assumption: every copy is judged, so MUT is no upper bound.
    return [unknown(duplicate) for duplicate in cluster.rbac.duplicates] or passed(
        NO_DUPLICATE_OBJECTS
    )


EVERY_OBJECT_READ = "every role and binding was read"


@check(
    id="rbac.unread_objects",
    title="Every role and binding in rbac.json can be read",
    severity=Severity.MEDIUM,
    area=Area.PRIVILEGED_ACCESS,
    maturity=Maturity.CRAWL,
    providers=ALL_PROVIDERS,
    rationale="An API server validates every role and binding it stores, so one with a field of "
    "the wrong shape was edited after collection or comes from a broken collector. It is "
    "skipped alone, but whatever it grants is then not counted: the other RBAC checks cannot "
    "pass and MUT is only an upper bound until it is read.",
    remediation=COLLECT_AGAIN,
    references=[RBAC_DOCS],
    pass_detail=EVERY_OBJECT_READ,
)
def unread_objects(cluster: Cluster):
    if cluster.rbac is None:
        return unknown(f"RBAC not read: {cluster.missing(RBAC_DOC)}")
    return [
        unknown(
            f"{RBAC_DOC}: {skipped.reason}: skipped, so its grants are not counted",
            _object_name(skipped),
            assumption="authorization: an RBAC object that could not be read is assumed to "
            "grant nothing",
        )
        for skipped in cluster.rbac.unread
    ] or passed(EVERY_OBJECT_READ)


def _object_name(skipped: UnreadObject) -> str | None:
    if not skipped.name:
        return None
    where = f"{skipped.namespace}/" if skipped.namespace else ""
    return f"{skipped.kind} {where}{skipped.name}"


@dataclass(frozen=True)
class PowerCheck:
    kind: str
    title: str
    severity: Severity
    rationale: str


# One check per dangerous power held by a named user, group or service account; adding a power
# means a row here, its rule in mutguard.rbac.powers, and its test.
ONLY_THE_PLATFORM = "only the platform's own bindings grant it"
POWER_CHECKS = (
    PowerCheck(
        "rbac.wildcard",
        "Nobody but the platform holds every verb on every resource",
        Severity.HIGH,
        "`*` on `*` is cluster-admin, whatever the role is called.",
    ),
    PowerCheck(
        "rbac.secrets_read",
        "Only the platform reads secrets cluster-wide",
        Severity.HIGH,
        "Reading every secret yields every token and password the cluster holds.",
    ),
    PowerCheck(
        "rbac.workload_create",
        "Pod creation is not granted where it reaches admin",
        Severity.HIGH,
        "Who creates pods (or Deployments, Jobs, …) runs code as any service "
        "account of the namespace, privileged unless admission stops it.",
    ),
    PowerCheck(
        "rbac.pod_exec",
        "Exec, attach and port-forward are not granted broadly",
        Severity.HIGH,
        "Exec into a pod acts with its service account and reaches its node "
        "when the pod is privileged.",
    ),
    PowerCheck(
        "rbac.escalate_bind",
        "Nobody can grant themselves more power",
        Severity.CRITICAL,
        "escalate or bind on roles lets the holder write or bind any permission, "
        "cluster-admin included.",
    ),
    PowerCheck(
        "rbac.impersonate",
        "Nobody can impersonate other identities",
        Severity.CRITICAL,
        "Impersonating a user or group (system:masters) is acting as the cluster admin.",
    ),
    PowerCheck(
        "rbac.token_create",
        "Service-account tokens are not minted broadly",
        Severity.HIGH,
        "Creating serviceaccounts/token mints a token for any service account in scope.",
    ),
    PowerCheck(
        "rbac.nodes_proxy",
        "Nobody but the platform uses nodes/proxy",
        Severity.CRITICAL,
        "nodes/proxy reaches the kubelet API: exec into any pod on any node, unaudited.",
    ),
    PowerCheck(
        "rbac.csr_approve",
        "Nobody can approve their own client certificates",
        Severity.CRITICAL,
        "Creating and approving CSRs for the kube-apiserver-client "
        "signer issues a certificate for any user or group, system:masters included.",
    ),
    PowerCheck(
        "rbac.webhook_write",
        "Admission webhooks are not writable by workloads",
        Severity.HIGH,
        "A mutating webhook rewrites every pod the cluster creates; a "
        "validating one sees every object, secrets included.",
    ),
    PowerCheck(
        "rbac.pv_create",
        "Persistent volumes are created only by the platform",
        Severity.HIGH,
        "A hostPath PersistentVolume mounts any node directory into a pod: root on the node.",
    ),
    PowerCheck(
        "rbac.node_patch",
        "Nodes are patched only by the platform",
        Severity.MEDIUM,
        "Patching nodes changes labels and taints, steering sensitive pods to a node the "
        "attacker holds.",
    ),
    PowerCheck(
        "rbac.namespace_relabel",
        "Who runs pods in a namespace cannot lift its Pod Security level",
        Severity.HIGH,
        "A RoleBinding with update or patch on namespaces covers its own Namespace object: its "
        "holder relabels pod-security.kubernetes.io/enforce to privileged and runs privileged "
        "pods there, whatever level the namespace enforced.",
    ),
)


def _register(power: PowerCheck) -> None:
    def run(cluster: Cluster):
        if cluster.rbac is None:
            return _rbac_unknown(cluster, "named subjects")
        return _findings(
            cluster,
            lambda g: g.power.kind == power.kind and not g.platform and not is_public(g.subject),
            ONLY_THE_PLATFORM,
        )

    check(
        id=power.kind,
        title=power.title,
        severity=power.severity,
        area=Area.PRIVILEGED_ACCESS,
        maturity=Maturity.WALK,
        providers=ALL_PROVIDERS,
        rationale=power.rationale,
        remediation=_remove_binding("the subject"),
        references=[RBAC_DOCS, GOOD_PRACTICES],
        pass_detail=ONLY_THE_PLATFORM,
    )(run)


for _power in POWER_CHECKS:
    _register(_power)
