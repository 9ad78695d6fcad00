"""Malformed, duplicated or dangling RBAC objects never hide a grant.

Kubernetes behaviour the expectations follow:
- An API server stores one object per kind, namespace and name, so a List it returns never holds
  two; an rbac.json that does was edited or merged, and either copy may be the real one.
- The RBAC authorizer resolves a binding's roleRef at request time (VisitRulesFor in
  pkg/registry/rbac/validation/rule.go): a binding whose role is missing is skipped and grants
  nothing, and grants the role's rules from the moment the role is created.
- The binding registry (pkg/registry/rbac/{cluster,}rolebinding/policybased/storage.go) stores a
  binding without resolving its roleRef when the requester may escalate or holds `bind` on it,
  so a binding of a role that does not exist is an object a real cluster can hold.
"""

import copy
from typing import Any

import pytest

from mutguard.models import Status
from mutguard.rbac import RbacPolicy

from builders import (
    assess,
    cluster_role,
    cluster_role_binding,
    describe_cluster,
    finding,
    rbac_list,
)

RBAC_API = "rbac.authorization.k8s.io"
WILDCARD = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
EVERYONE = ("Group", "system:authenticated")
NO_ANONYMOUS = {"anonymous_version": False, "anonymous_api": False}


def role_binding(name: str, namespace: str, role_kind: str, role: str, *subjects: dict) -> dict:
    return {
        "apiVersion": f"{RBAC_API}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": RBAC_API, "kind": role_kind, "name": role},
        "subjects": list(subjects),
    }


def role(name: str, namespace: str, *rules: dict) -> dict:
    return {
        "apiVersion": f"{RBAC_API}/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": list(rules),
    }


# Duplicates: every copy is judged, a role's copies by the union of their rules.

ADMIN_COPY = cluster_role("support", WILDCARD)
HARMLESS_COPY = cluster_role(
    "support", {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}
)
SUPPORT_FOR_EVERYONE = cluster_role_binding("support-everyone", "support", EVERYONE)


@pytest.mark.parametrize(
    "copies",
    [(ADMIN_COPY, HARMLESS_COPY), (HARMLESS_COPY, ADMIN_COPY)],
    ids=["admin-first", "last"],
)
def test_an_admin_grant_in_either_copy_of_a_duplicated_role_counts(copies):
    # Either copy may be the one the cluster holds: the admin copy alone is MUT 1 from a leaked
    # credential (any identity is in system:authenticated), so both together must be too.
    report = assess(
        describe_cluster(), rbac=rbac_list(*copies, SUPPORT_FOR_EVERYONE), probe=NO_ANONYMOUS
    )
    alone = assess(
        describe_cluster(), rbac=rbac_list(ADMIN_COPY, SUPPORT_FOR_EVERYONE), probe=NO_ANONYMOUS
    )
    assert finding(report, "rbac.authenticated_admin").status is Status.FAIL
    assert report.mut_credential == alone.mut_credential == 1
    duplicate = finding(report, "rbac.duplicate_objects")
    assert duplicate.status is Status.UNKNOWN
    assert duplicate.detail == (
        "rbac.json holds two ClusterRoles named support: a real API server never returns "
        "duplicates; both are judged"
    )
    # Judging every copy is the worst case, not a guess in MUT's favour: no upper bound added.
    assert report.mut_upper_bound == alone.mut_upper_bound


@pytest.mark.parametrize("admin_first", [True, False])
def test_both_copies_of_a_duplicated_binding_count(admin_first):
    admin = cluster_role_binding("support", "cluster-admin", EVERYONE)
    harmless = cluster_role_binding("support", "view", ("User", "alice@example.com"))
    copies = (admin, harmless) if admin_first else (harmless, admin)
    report = assess(describe_cluster(), rbac=rbac_list(*copies), probe=NO_ANONYMOUS)
    assert finding(report, "rbac.authenticated_admin").status is Status.FAIL
    assert report.mut_credential == 1
    assert (
        "two ClusterRoleBindings named support" in finding(report, "rbac.duplicate_objects").detail
    )


def test_a_duplicated_role_is_judged_by_the_union_of_its_copies():
    # Over-reporting a power that needs rules from both copies is the safe side of a document no
    # API server produces: neither copy can be ruled out, and neither can their sum.
    bind = cluster_role(
        "binder", {"apiGroups": [RBAC_API], "resources": ["clusterroles"], "verbs": ["bind"]}
    )
    create = cluster_role(
        "binder",
        {"apiGroups": [RBAC_API], "resources": ["clusterrolebindings"], "verbs": ["create"]},
    )
    binding = cluster_role_binding("ci-binder", "binder", ("User", "ci"))
    report = assess(describe_cluster(), rbac=rbac_list(bind, create, binding))
    assert finding(report, "rbac.escalate_bind").status is Status.FAIL


def test_duplicated_namespaced_roles_are_named_with_their_namespace():
    pods = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}
    copies = (role("deployer", "team-a", pods), role("deployer", "team-a"))
    policy = RbacPolicy.from_kubectl(rbac_list(*copies, bootstrap=False))
    assert policy.duplicates == [
        "rbac.json holds two Roles named team-a/deployer: a real API server never returns "
        "duplicates; both are judged"
    ]
    # The same name in another namespace is another object.
    other = RbacPolicy.from_kubectl(
        rbac_list(role("deployer", "team-a"), role("deployer", "team-b"), bootstrap=False)
    )
    assert other.duplicates == []


def test_a_policy_without_duplicates_passes():
    report = assess(describe_cluster(), rbac=rbac_list())
    assert finding(report, "rbac.duplicate_objects").status is Status.PASS


# Dangling bindings: no grant today, a finding naming the subjects, and no attack-graph edge.


def test_a_binding_of_a_missing_cluster_role_to_everyone_is_reported_not_counted():
    dangling = cluster_role_binding("old-admins", "cluster-admin-old", EVERYONE)
    report = assess(describe_cluster(), rbac=rbac_list(dangling), probe=NO_ANONYMOUS)
    clean = assess(describe_cluster(), rbac=rbac_list(), probe=NO_ANONYMOUS)
    result = finding(report, "rbac.dangling_binding")
    assert result.status is Status.FAIL
    assert result.resource == "ClusterRoleBinding old-admins"
    assert "ClusterRole cluster-admin-old, which does not exist" in result.detail
    assert "Group system:authenticated" in result.detail
    # The authorizer skips the binding today: no admin grant, and MUT is what it was without it.
    assert finding(report, "rbac.authenticated_admin").status is Status.PASS
    assert (report.mut, report.mut_workload, report.mut_credential) == (
        clean.mut,
        clean.mut_workload,
        clean.mut_credential,
    )
    assert result.mut_gain == 0


def test_a_role_binding_looks_for_its_role_in_its_own_namespace():
    pods = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}
    ci = {"kind": "ServiceAccount", "name": "ci", "namespace": "ci"}
    elsewhere = role_binding("deploy", "team-b", "Role", "deployer", ci)
    report = assess(describe_cluster(), rbac=rbac_list(role("deployer", "team-a", pods), elsewhere))
    result = finding(report, "rbac.dangling_binding")
    assert result.status is Status.FAIL
    assert result.resource == "RoleBinding team-b/deploy"
    assert "Role deployer" in result.detail and "ServiceAccount ci/ci" in result.detail
    assert finding(report, "rbac.workload_create").status is Status.PASS

    present = role_binding("deploy", "team-a", "Role", "deployer", ci)
    report = assess(describe_cluster(), rbac=rbac_list(role("deployer", "team-a", pods), present))
    assert finding(report, "rbac.dangling_binding").status is Status.PASS
    assert finding(report, "rbac.workload_create").status is Status.FAIL


def test_a_dangling_binding_without_subjects_grants_nobody():
    empty = cluster_role_binding("placeholder", "does-not-exist")
    report = assess(describe_cluster(), rbac=rbac_list(empty))
    assert finding(report, "rbac.dangling_binding").status is Status.PASS


def test_dangling_binding_is_unknown_without_rbac():
    report = assess(describe_cluster())
    assert finding(report, "rbac.dangling_binding").status is Status.UNKNOWN
    assert finding(report, "rbac.duplicate_objects").status is Status.UNKNOWN


# Malformed objects: rejected at parse with the object and field named, or judged; never a
# crashing check. A skipped object could grant anything, so the whole rbac.json is refused and
# every RBAC check says UNKNOWN with MUT a stated upper bound.


def test_a_malformed_role_is_skipped_alone_and_named():
    # The other objects are still judged: the admin grant to everyone through a well-formed role
    # is reported, the malformed role is named, and the binding to it is no "missing role".
    hidden = cluster_role("ext", WILDCARD)
    hidden["metadata"]["labels"] = "aggregate-to-support"
    to_hidden = cluster_role_binding("ext-everyone", "ext", EVERYONE)
    report = assess(
        describe_cluster(),
        rbac=rbac_list(hidden, to_hidden, ADMIN_COPY, SUPPORT_FOR_EVERYONE),
        probe=NO_ANONYMOUS,
    )
    assert report.errors == [
        "rbac.json: ClusterRole ext: metadata.labels must be an object of strings "
        "(skipped: what it holds is not counted)"
    ]
    assert finding(report, "rbac.authenticated_admin").status is Status.FAIL
    assert finding(report, "rbac.authenticated_admin").resource == (
        "ClusterRoleBinding support-everyone"
    )
    skipped = finding(report, "rbac.unread_objects")
    assert (skipped.status, skipped.resource) == (Status.UNKNOWN, "ClusterRole ext")
    assert finding(report, "rbac.dangling_binding").status is Status.UNKNOWN
    assert [f for f in report.findings if f.status is Status.ERROR] == []
    assert report.mut_credential == 1 and "mut_credential" in report.mut_upper_bound


def test_a_check_that_finds_nothing_cannot_pass_while_an_object_is_skipped():
    # The skipped role may be the admin grant: no RBAC check may pass, and MUT is a bound.
    hidden = cluster_role("ext", WILDCARD)
    hidden["metadata"]["labels"] = "aggregate-to-support"
    report = assess(
        describe_cluster(),
        rbac=rbac_list(hidden, cluster_role_binding("ext-everyone", "ext", EVERYONE)),
        probe=NO_ANONYMOUS,
    )
    for check_id in ("rbac.authenticated_admin", "rbac.wildcard", "rbac.dangling_binding"):
        assert finding(report, check_id).status is Status.UNKNOWN, check_id
    assert report.mut_upper_bound


def test_an_item_that_is_not_an_object_is_skipped_and_named():
    document = rbac_list(ADMIN_COPY, SUPPORT_FOR_EVERYONE)
    document["items"].insert(0, "ClusterRole admin")
    report = assess(describe_cluster(), rbac=document, probe=NO_ANONYMOUS)
    assert report.errors == [
        "rbac.json: items[0] is not an object (skipped: what it holds is not counted)"
    ]
    assert finding(report, "rbac.authenticated_admin").status is Status.FAIL
    assert finding(report, "rbac.unread_objects").resource == report.arn_or_id


def test_a_well_formed_policy_reads_every_object():
    report = assess(describe_cluster(), rbac=rbac_list(ADMIN_COPY), probe=NO_ANONYMOUS)
    assert finding(report, "rbac.unread_objects").status is Status.PASS
    assert report.errors == []


BAD_VALUES = [
    None,
    "",
    "x",
    0,
    7,
    True,
    1.5,
    [],
    ["x"],
    [1],
    [None],
    [{}],
    [{"kind": 5}],
    {},
    {"a": 1},
    {"a": ["b"]},
    {"kind": "ClusterRole", "name": ["cluster-admin"]},
    {"matchLabels": 1, "matchExpressions": "x"},
]


def aggregated_policy() -> dict[str, Any]:
    """A grant that runs through every field the parser reads: an aggregated role, a labelled
    role it aggregates, and a binding with a subject of every kind."""
    extension = cluster_role(
        "extension", WILDCARD, labels={"example.com/aggregate-to-support": "true"}
    )
    extension["metadata"]["annotations"] = {"owner": "platform"}
    extension["rules"][0]["resourceNames"] = []
    extension["rules"][0]["nonResourceURLs"] = []
    support = cluster_role(
        "support",
        aggregate=[
            {
                "matchLabels": {"example.com/aggregate-to-support": "true"},
                "matchExpressions": [
                    {
                        "key": "example.com/aggregate-to-support",
                        "operator": "In",
                        "values": ["true"],
                    }
                ],
            }
        ],
    )
    binding = cluster_role_binding("support", "support", EVERYONE, ("User", "alice"))
    binding["subjects"].append({"kind": "ServiceAccount", "name": "ci", "namespace": "ci"})
    binding["metadata"]["labels"] = {"team": "platform"}
    binding["metadata"]["annotations"] = {"owner": "platform"}
    return rbac_list(extension, support, binding, bootstrap=False)


# (index of the item in aggregated_policy, the path of the field replaced, the object's name)
FIELDS = [
    *(
        (0, path, "ClusterRole extension")
        for path in (
            ("metadata", "labels"),
            ("metadata", "annotations"),
            ("rules",),
            ("rules", 0),
            ("rules", 0, "verbs"),
            ("rules", 0, "apiGroups"),
            ("rules", 0, "resources"),
            ("rules", 0, "resourceNames"),
            ("rules", 0, "nonResourceURLs"),
        )
    ),
    *(
        (1, path, "ClusterRole support")
        for path in (
            ("aggregationRule",),
            ("aggregationRule", "clusterRoleSelectors"),
            ("aggregationRule", "clusterRoleSelectors", 0),
            ("aggregationRule", "clusterRoleSelectors", 0, "matchLabels"),
            ("aggregationRule", "clusterRoleSelectors", 0, "matchExpressions"),
            ("aggregationRule", "clusterRoleSelectors", 0, "matchExpressions", 0, "key"),
            ("aggregationRule", "clusterRoleSelectors", 0, "matchExpressions", 0, "operator"),
            ("aggregationRule", "clusterRoleSelectors", 0, "matchExpressions", 0, "values"),
        )
    ),
    *(
        (2, path, "ClusterRoleBinding support")
        for path in (
            ("metadata", "labels"),
            ("metadata", "annotations"),
            ("roleRef",),
            ("roleRef", "kind"),
            ("roleRef", "name"),
            ("roleRef", "apiGroup"),
            ("subjects",),
            ("subjects", 0),
            ("subjects", 0, "kind"),
            ("subjects", 0, "name"),
            ("subjects", 0, "apiGroup"),
            ("subjects", 2, "namespace"),
        )
    ),
]


def with_field(document: dict, index: int, path: tuple, value: Any) -> dict:
    changed = copy.deepcopy(document)
    parent = changed["items"][index]
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = copy.deepcopy(value)
    return changed


@pytest.mark.parametrize(("index", "path", "named"), FIELDS, ids=lambda v: str(v))
def test_every_accepted_shape_is_judged_without_a_crash(index, path, named):
    base = aggregated_policy()
    for value in BAD_VALUES:
        document = with_field(base, index, path, value)
        skipped = RbacPolicy.from_kubectl(document).unread
        report = assess(describe_cluster(), rbac=document)
        crashed = [f for f in report.findings if f.status is Status.ERROR]
        assert crashed == [], (path, value)
        if skipped:
            # Only that object is skipped, named with the field; its grant may not read as none.
            assert [named in s.reason for s in skipped] == [True], (path, value, skipped)
            assert report.errors == [
                f"rbac.json: {skipped[0].reason} (skipped: what it holds is not counted)"
            ]
            assert finding(report, "rbac.authenticated_admin").status is Status.UNKNOWN
            assert report.mut_upper_bound, (path, value)
            continue
        assert report.errors == [], (path, value)
        # The grant may only go where Kubernetes reads the value the same way: null, an empty
        # or other list or object, another name. A scalar of the wrong type is never read as
        # "nothing" (the API server would have refused the object).
        if finding(report, "rbac.authenticated_admin").status is not Status.FAIL:
            assert (
                value is None
                or isinstance(value, list | dict)
                or (isinstance(value, str) and path[-1] in ("key", "name"))
            ), (path, value)
