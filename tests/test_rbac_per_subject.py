"""Powers are judged per subject, over every binding that applies to it.

Kubernetes behaviour the expectations follow:
- The RBAC authorizer allows a request when any rule of any binding that applies to the
  requester matches (plugin/pkg/auth/authorizer/rbac/rbac.go, RBACAuthorizer.Authorize, through
  the rule resolver's VisitRulesFor in pkg/registry/rbac/validation/rule.go: every
  ClusterRoleBinding, then every RoleBinding of the request's namespace, for the user and each
  of the user's groups). So permissions split across bindings add up.
- Creating a binding is allowed when the requester may `create` it and, by the escalation check
  (pkg/registry/rbac/escalation_check.go, BindingAuthorized), holds `bind` on the role it names
  in the binding's namespace. `bind` and `create clusterrolebindings` from two different
  bindings are together the power to bind cluster-admin to oneself.
- Every authenticated user is in system:authenticated; a service account is also in
  system:serviceaccounts and system:serviceaccounts:<namespace>
  (k8s.io/apiserver/pkg/authentication/serviceaccount/util.go, MakeGroupNames).
"""

from mutguard.models import Status

from builders import (
    assess,
    cluster_role,
    cluster_role_binding,
    describe_cluster,
    finding,
    rbac_list,
)

RBAC_API = "rbac.authorization.k8s.io"
PRIVATE = {"public": False, "private": True}
NO_ANONYMOUS = {"anonymous_version": False, "anonymous_api": False}
BIND_ANY_ROLE = cluster_role(
    "role-binder", {"apiGroups": [RBAC_API], "resources": ["clusterroles"], "verbs": ["bind"]}
)
WRITE_CLUSTER_BINDINGS = cluster_role(
    "binding-writer",
    {"apiGroups": [RBAC_API], "resources": ["clusterrolebindings"], "verbs": ["create"]},
)
WRITE_BINDINGS = cluster_role(
    "rolebinding-writer",
    {"apiGroups": [RBAC_API], "resources": ["rolebindings"], "verbs": ["create"]},
)
ALICE = ("User", "alice")


def rolebinding(name: str, namespace: str, role: str, *subjects: dict) -> dict:
    return {
        "apiVersion": f"{RBAC_API}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": RBAC_API, "kind": "ClusterRole", "name": role},
        "subjects": list(subjects),
    }


def scan(*items: dict):
    return assess(describe_cluster(**PRIVATE), rbac=rbac_list(*items), probe=NO_ANONYMOUS)


def test_bind_and_create_bindings_from_two_bindings_are_cluster_admin():
    report = scan(
        BIND_ANY_ROLE,
        WRITE_CLUSTER_BINDINGS,
        cluster_role_binding("alice-binder", "role-binder", ALICE),
        cluster_role_binding("alice-bindings", "binding-writer", ALICE),
    )
    escalate = finding(report, "rbac.escalate_bind")
    assert escalate.status is Status.FAIL
    assert "ClusterRoleBinding alice-binder" in escalate.detail
    assert "together with ClusterRoleBinding alice-bindings" in escalate.detail
    assert "User alice bind clusterroles" in escalate.detail
    # alice can bind cluster-admin to herself: her credential is as good as cluster-admin's.
    admin = scan(cluster_role_binding("alice-admin", "cluster-admin", ALICE))
    assert report.mut_credential == admin.mut_credential
    assert report.mut_credential < scan().mut_credential


def test_either_binding_alone_grants_nothing():
    for binding in (
        cluster_role_binding("alice-binder", "role-binder", ALICE),
        cluster_role_binding("alice-bindings", "binding-writer", ALICE),
    ):
        report = scan(BIND_ANY_ROLE, WRITE_CLUSTER_BINDINGS, binding)
        assert finding(report, "rbac.escalate_bind").status is Status.PASS, binding
        assert report.mut_credential == scan().mut_credential


def test_two_subjects_holding_one_half_each_grant_nothing():
    report = scan(
        BIND_ANY_ROLE,
        WRITE_CLUSTER_BINDINGS,
        cluster_role_binding("alice-binder", "role-binder", ALICE),
        cluster_role_binding("bob-bindings", "binding-writer", ("User", "bob")),
    )
    assert finding(report, "rbac.escalate_bind").status is Status.PASS


def test_a_service_account_adds_up_its_own_binding_and_its_namespace_groups():
    # The ci namespace's service accounts may create RoleBindings in ci (a group grant); the
    # deployer may bind any ClusterRole (its own grant). Together: bind cluster-admin in ci.
    deployer = {"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}
    report = scan(
        BIND_ANY_ROLE,
        WRITE_BINDINGS,
        {
            **cluster_role_binding("deployer-binder", "role-binder"),
            "subjects": [deployer],
        },
        rolebinding(
            "ci-bindings",
            "ci",
            "rolebinding-writer",
            {"kind": "Group", "name": "system:serviceaccounts:ci", "apiGroup": RBAC_API},
        ),
    )
    escalate = finding(report, "rbac.escalate_bind")
    assert escalate.status is Status.FAIL
    assert "ServiceAccount ci/deployer bind clusterroles in namespace ci" in escalate.detail
    assert "together with RoleBinding ci/ci-bindings" in escalate.detail


def test_what_a_group_holds_is_reported_once_on_the_group_not_on_each_member():
    everyone = ("Group", "system:authenticated")
    report = scan(
        BIND_ANY_ROLE,
        WRITE_CLUSTER_BINDINGS,
        cluster_role_binding("all-binder", "role-binder", everyone),
        cluster_role_binding("all-bindings", "binding-writer", everyone),
        cluster_role_binding("alice-binder", "role-binder", ALICE),
    )
    public = finding(report, "rbac.authenticated_admin")
    assert public.status is Status.FAIL and "Group system:authenticated" in public.detail
    assert not any("User alice" in f.detail for f in report.findings if f.status is Status.FAIL)


# bind limited by resourceNames: BindingAuthorized asks for `bind` on the very role a new binding
# names (attributes Verb "bind", Resource clusterroles or roles, Name the roleRef's name), so the
# holder may bind exactly those roles: as strong as the strongest of them.
def named_binder(*names: str) -> dict:
    return cluster_role(
        "named-binder",
        {
            "apiGroups": [RBAC_API],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": list(names),
        },
        {"apiGroups": [RBAC_API], "resources": ["clusterrolebindings"], "verbs": ["create"]},
    )


def test_bind_limited_to_cluster_admin_is_cluster_admin():
    report = scan(
        named_binder("cluster-admin"), cluster_role_binding("alice-binds", "named-binder", ALICE)
    )
    escalate = finding(report, "rbac.escalate_bind")
    assert escalate.status is Status.FAIL
    assert "bind ClusterRole cluster-admin, which can use every verb" in escalate.detail
    admin = scan(cluster_role_binding("alice-admin", "cluster-admin", ALICE))
    assert report.mut_credential == admin.mut_credential


def test_bind_limited_to_a_harmless_role_grants_nothing():
    report = scan(named_binder("view"), cluster_role_binding("alice-binds", "named-binder", ALICE))
    assert finding(report, "rbac.escalate_bind").status is Status.PASS
    assert report.mut_credential == scan().mut_credential


def test_bind_limited_to_a_role_without_a_binding_to_write_grants_nothing():
    binder = named_binder("cluster-admin")
    binder["rules"].pop()  # no create on clusterrolebindings: bind alone writes nothing
    report = scan(binder, cluster_role_binding("alice-binds", "named-binder", ALICE))
    assert finding(report, "rbac.escalate_bind").status is Status.PASS
