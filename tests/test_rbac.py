"""RBAC as the authorizer reads it, and the checks on grants to everyone."""

import pytest

from mutguard.errors import InputError
from mutguard.models import Status
from mutguard.rbac import RbacPolicy, Reach, Rule, powers

from builders import (
    assess,
    bootstrap_items,
    cluster_role,
    cluster_role_binding,
    describe_cluster,
    finding,
    rbac_list,
)


def rule(verbs, groups=("",), resources=(), names=(), urls=()):
    return Rule(
        frozenset(verbs), frozenset(groups), frozenset(resources), frozenset(names), frozenset(urls)
    )


def test_rule_matching_follows_the_authorizer():
    pods = rule(["get"], resources=["pods"])
    assert pods.allows("get", "", "pods")
    assert not pods.allows("get", "", "pods", "exec")  # a subresource needs its own grant
    assert not pods.allows("get", "apps", "pods")
    assert rule(["create"], resources=["pods/exec"]).allows("create", "", "pods", "exec")
    assert rule(["get"], resources=["*/status"]).allows("get", "", "nodes", "status")
    assert rule(["*"], groups=["*"], resources=["*"]).allows("delete", "batch", "jobs", "status")
    named = rule(["get"], resources=["secrets"], names=["one"])
    assert not named.allows("get", "", "secrets")  # only some secrets
    assert named.allows_named("get", "", "secrets")
    urls = rule(["get"], groups=(), urls=["/healthz", "/api/*"])
    assert urls.allows_url("get", "/api/v1") and urls.allows_url("get", "/healthz")
    assert not urls.allows_url("get", "/apis")


def kinds(found):
    return {(p.kind, p.reach) for p in found}


def test_powers_cluster_wide():
    assert kinds(powers([rule(["*"], ["*"], ["*"])])) == {("rbac.wildcard", Reach.ADMIN)}
    assert kinds(powers([rule(["list"], resources=["secrets"])])) == {
        ("rbac.secrets_read", Reach.ADMIN)
    }
    assert kinds(powers([rule(["impersonate"], resources=["groups"])])) == {
        ("rbac.impersonate", Reach.ADMIN)
    }
    assert kinds(powers([rule(["get"], resources=["nodes/proxy"])])) == {
        ("rbac.nodes_proxy", Reach.ADMIN)
    }
    assert kinds(powers([rule(["create"], ["apps"], ["daemonsets"])])) == {
        ("rbac.workload_create", Reach.ADMIN)
    }
    assert powers([rule(["get", "list"], resources=["pods", "configmaps"])]) == []
    assert powers([rule(["get"], resources=["secrets"], names=["tls"])]) == []


def test_bind_needs_a_binding_to_write_and_escalate_a_role_to_write():
    rbac_api = "rbac.authorization.k8s.io"
    assert powers([rule(["bind"], [rbac_api], ["clusterroles"])]) == []
    bind = powers(
        [
            rule(["bind"], [rbac_api], ["clusterroles"]),
            rule(["create"], [rbac_api], ["clusterrolebindings"]),
        ]
    )
    assert kinds(bind) == {("rbac.escalate_bind", Reach.ADMIN)}
    escalate = powers([rule(["escalate", "update"], [rbac_api], ["clusterroles"])])
    assert kinds(escalate) == {("rbac.escalate_bind", Reach.ADMIN)}


RBAC_GROUP = "rbac.authorization.k8s.io"


def test_pods_slash_star_is_no_wildcard():
    # ResourceMatches (pkg/apis/rbac/v1/evaluation_helpers.go): only "*" and "*/<subresource>"
    # are patterns; "pods/*" is compared as a literal and matches no request.
    literal = rule(["create"], resources=["pods/*"])
    assert not literal.allows("create", "", "pods", "exec")
    assert powers([literal]) == []
    assert rule(["create"], resources=["*/exec"]).allows("create", "", "pods", "exec")


@pytest.mark.parametrize(
    ("rules", "namespace", "expected"),
    [
        # The impersonation filter (k8s.io/apiserver/pkg/endpoints/filters/impersonation.go)
        # asks for users and groups with no namespace, which a RoleBinding never matches (the
        # rule resolver reads RoleBindings only of the request's namespace), and for a service
        # account in that account's namespace.
        ([rule(["impersonate"], resources=["users", "groups"])], "team-a", set()),
        (
            [rule(["impersonate"], resources=["serviceaccounts"])],
            "team-a",
            {("rbac.impersonate", Reach.NAMESPACE)},
        ),
        # clusterroles and clusterrolebindings are cluster-scoped: no RoleBinding lets anyone
        # write them, whatever escalate or bind it holds.
        ([rule(["escalate", "update"], [RBAC_GROUP], ["clusterroles"])], "team-a", set()),
        (
            [
                rule(["bind"], [RBAC_GROUP], ["clusterroles"]),
                rule(["create"], [RBAC_GROUP], ["clusterrolebindings"]),
            ],
            "team-a",
            set(),
        ),
        (
            [rule(["escalate", "update"], [RBAC_GROUP], ["roles"])],
            "team-a",
            {("rbac.escalate_bind", Reach.NAMESPACE)},
        ),
        # BindingAuthorized (pkg/registry/rbac/escalation_check.go) asks for bind on the role's
        # kind in the binding's namespace: bind on clusterroles through a RoleBinding lets its
        # holder bind cluster-admin in that namespace with a RoleBinding.
        (
            [
                rule(["bind"], [RBAC_GROUP], ["clusterroles"]),
                rule(["create"], [RBAC_GROUP], ["rolebindings"]),
            ],
            "team-a",
            {("rbac.escalate_bind", Reach.NAMESPACE)},
        ),
        (
            [
                rule(["bind"], [RBAC_GROUP], ["clusterroles"]),
                rule(["create"], [RBAC_GROUP], ["rolebindings"]),
            ],
            "kube-system",
            {("rbac.escalate_bind", Reach.ADMIN)},
        ),
        # Cluster-wide, a RoleBinding of cluster-admin in kube-system is as good as a
        # ClusterRoleBinding; a ClusterRoleBinding can name only a ClusterRole (validation of
        # roleRef in pkg/apis/rbac/validation), so bind on roles needs rolebindings.
        (
            [
                rule(["bind"], [RBAC_GROUP], ["clusterroles"]),
                rule(["create"], [RBAC_GROUP], ["rolebindings"]),
            ],
            None,
            {("rbac.escalate_bind", Reach.ADMIN)},
        ),
        (
            [
                rule(["bind"], [RBAC_GROUP], ["roles"]),
                rule(["create"], [RBAC_GROUP], ["clusterrolebindings"]),
            ],
            None,
            set(),
        ),
        # Cluster-scoped resources: nothing through a RoleBinding.
        ([rule(["get"], resources=["nodes/proxy"])], "team-a", set()),
        (
            [rule(["create"], ["admissionregistration.k8s.io"], ["mutatingwebhookconfigurations"])],
            "team-a",
            set(),
        ),
    ],
)
def test_a_role_binding_authorizes_only_requests_in_its_namespace(rules, namespace, expected):
    assert kinds(powers(rules, namespace)) == expected


def test_csr_approval_needs_create_approval_and_a_signer():
    csr = "certificates.k8s.io"
    create = rule(["create"], [csr], ["certificatesigningrequests"])
    approval = rule(["update"], [csr], ["certificatesigningrequests/approval"])
    signer = rule(["approve"], [csr], ["signers"], names=["kubernetes.io/kube-apiserver-client"])
    assert powers([create, approval]) == []
    assert kinds(powers([create, approval, signer])) == {("rbac.csr_approve", Reach.ADMIN)}


def test_namespace_scope_reaches_the_namespace_except_kube_system():
    pods = [rule(["create"], resources=["pods"])]
    assert kinds(powers(pods, "team-a")) == {("rbac.workload_create", Reach.NAMESPACE)}
    assert kinds(powers(pods, "kube-system")) == {("rbac.workload_create", Reach.ADMIN)}
    secrets = [rule(["get"], resources=["secrets"])]
    assert kinds(powers(secrets, "team-a")) == {("rbac.secrets_read", Reach.NONE)}
    volumes = [rule(["create"], resources=["persistentvolumes"])]
    assert kinds(powers(volumes)) == {("rbac.pv_create", Reach.NODE)}
    assert powers(volumes, "team-a") == []  # persistent volumes are cluster-scoped


def bootstrap_policy(featuregates: bool) -> dict:
    """The bootstrap policy as an API server lists it: the feature-gated variant replaces roles
    of the default (same names), and the bindings stay those of the default."""
    if not featuregates:
        return rbac_list()
    gated = bootstrap_items(featuregates=True)
    replaced = {(i["kind"], i["metadata"]["name"]) for i in gated}
    kept = [i for i in bootstrap_items() if (i["kind"], i["metadata"]["name"]) not in replaced]
    return rbac_list(*kept, *gated, bootstrap=False)


@pytest.mark.parametrize("featuregates", [False, True])
def test_bootstrap_policy_is_the_safe_default(featuregates):
    rbac = bootstrap_policy(featuregates)
    assert len(RbacPolicy.from_kubectl(rbac).bindings) > 50
    report = assess(describe_cluster(version="1.31"), rbac=rbac)
    for check_id in ("rbac.anonymous_admin", "rbac.authenticated_admin"):
        assert finding(report, check_id).status is Status.PASS
    assert report.mut == 1  # public endpoint and anonymous auth, but no bad binding


def test_public_info_viewer_is_benign():
    policy = RbacPolicy.from_kubectl(rbac_list())
    viewer = next(b for b in policy.bindings if b.name == "system:public-info-viewer")
    assert {s.name for s in viewer.subjects} == {"system:authenticated", "system:unauthenticated"}
    rules = policy.rules_of(viewer)
    assert rules and powers(rules) == []
    assert any(r.allows_url("get", "/version") for r in rules)


def test_aggregated_role_that_hides_a_wildcard():
    hidden = cluster_role(
        "innocent-extension",
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        labels={"example.com/aggregate-to-support": "true"},
    )
    support = cluster_role(
        "support",
        aggregate=[{"matchLabels": {"example.com/aggregate-to-support": "true"}}],
    )
    binding = cluster_role_binding("support-everyone", "support", ("Group", "system:authenticated"))
    report = assess(describe_cluster(), rbac=rbac_list(hidden, support, binding))
    result = finding(report, "rbac.authenticated_admin")
    assert result.status is Status.FAIL
    assert result.resource == "ClusterRoleBinding support-everyone"
    assert "every verb on every resource" in result.detail
    assert report.mut_credential == 1  # any leaked credential is now admin


def test_secret_reader_bound_to_anonymous_is_admin_equivalent():
    reader = cluster_role(
        "secret-reader", {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}
    )
    binding = cluster_role_binding("read-secrets", "secret-reader", ("User", "system:anonymous"))
    report = assess(describe_cluster(version="1.31"), rbac=rbac_list(reader, binding))
    assert finding(report, "rbac.anonymous_admin").status is Status.FAIL
    assert report.mut == 0


def test_binding_to_a_missing_role_grants_nothing():
    binding = cluster_role_binding(
        "dangling", "does-not-exist", ("Group", "system:unauthenticated")
    )
    report = assess(describe_cluster(), rbac=rbac_list(binding))
    assert finding(report, "rbac.anonymous_admin").status is Status.PASS


def test_a_document_that_is_no_list_is_named():
    with pytest.raises(InputError, match="kubectl List"):
        RbacPolicy.from_kubectl({"kind": "ClusterRole"})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"items": [{"kind": "ClusterRole", "metadata": {}}]}, "metadata.name"),
        (
            {
                "items": [
                    {"kind": "ClusterRole", "metadata": {"name": "x"}, "rules": [{"verbs": "get"}]}
                ]
            },
            "list of strings",
        ),
        (
            {
                "items": [
                    {
                        "kind": "ClusterRoleBinding",
                        "metadata": {"name": "b"},
                        "roleRef": {"kind": "Nope"},
                    }
                ]
            },
            "roleRef",
        ),
    ],
)
def test_a_malformed_object_is_skipped_and_named(document, message):
    (skipped,) = RbacPolicy.from_kubectl(document).unread
    assert message in skipped.reason


def test_unknown_selector_operator_is_named_at_parse_not_a_pass():
    # The API server's validation accepts only In, NotIn, Exists and DoesNotExist; what an
    # unknown operator aggregates cannot be told, so the role is skipped and MUT a stated bound.
    support = cluster_role(
        "support", aggregate=[{"matchExpressions": [{"key": "a", "operator": "Near"}]}]
    )
    binding = cluster_role_binding("b", "support", ("Group", "system:authenticated"))
    report = assess(describe_cluster(), rbac=rbac_list(support, binding))
    assert finding(report, "rbac.authenticated_admin").status is Status.UNKNOWN
    (error,) = report.errors
    assert "ClusterRole support.aggregationRule" in error and "'Near'" in error
    assert report.mut_upper_bound


CORE, APPS, RBAC_API = "", "apps", "rbac.authorization.k8s.io"


def r(verbs, group, resources, names=()):
    found = {"apiGroups": [group], "resources": resources, "verbs": verbs}
    if names:
        found["resourceNames"] = list(names)
    return found


@pytest.mark.parametrize(
    ("check_id", "rules"),
    [
        ("rbac.wildcard", [r(["*"], "*", ["*"])]),
        ("rbac.secrets_read", [r(["list"], CORE, ["secrets"])]),
        ("rbac.workload_create", [r(["create"], APPS, ["deployments"])]),
        ("rbac.pod_exec", [r(["create"], CORE, ["pods/exec"])]),
        (
            "rbac.escalate_bind",
            [
                r(["bind"], RBAC_API, ["clusterroles"]),
                r(["create"], RBAC_API, ["clusterrolebindings"]),
            ],
        ),
        ("rbac.impersonate", [r(["impersonate"], CORE, ["users", "groups"])]),
        ("rbac.token_create", [r(["create"], CORE, ["serviceaccounts/token"])]),
        ("rbac.nodes_proxy", [r(["get"], CORE, ["nodes/proxy"])]),
        (
            "rbac.csr_approve",
            [
                r(["create"], "certificates.k8s.io", ["certificatesigningrequests"]),
                r(["update"], "certificates.k8s.io", ["certificatesigningrequests/approval"]),
                r(
                    ["approve"],
                    "certificates.k8s.io",
                    ["signers"],
                    ["kubernetes.io/kube-apiserver-client"],
                ),
            ],
        ),
        (
            "rbac.webhook_write",
            [r(["patch"], "admissionregistration.k8s.io", ["mutatingwebhookconfigurations"])],
        ),
        ("rbac.pv_create", [r(["create"], CORE, ["persistentvolumes"])]),
        ("rbac.node_patch", [r(["patch"], CORE, ["nodes"])]),
    ],
)
def test_each_dangerous_power_held_by_a_named_subject(check_id, rules):
    role = cluster_role("risky", *rules)
    binding = cluster_role_binding("ci-deployer", "risky", ("User", "ci-deployer"))
    report = assess(describe_cluster(), rbac=rbac_list(role, binding))
    result = finding(report, check_id)
    assert result.status is Status.FAIL
    assert result.resource == "ClusterRoleBinding ci-deployer"
    assert "User ci-deployer" in result.detail
    assert finding(assess(describe_cluster(), rbac=rbac_list()), check_id).status is Status.PASS


@pytest.mark.parametrize("featuregates", [False, True])
def test_bootstrap_policy_has_no_rbac_finding(featuregates):
    report = assess(describe_cluster(), rbac=bootstrap_policy(featuregates))
    failures = [
        f for f in report.findings if f.check_id.startswith("rbac.") and f.status is not Status.PASS
    ]
    assert failures == []


def test_an_admin_user_is_a_credential_that_is_admin_on_its_own():
    binding = cluster_role_binding("alice-admin", "cluster-admin", ("User", "alice@example.com"))
    report = assess(
        describe_cluster(),
        rbac=rbac_list(binding),
        probe={"anonymous_version": False, "anonymous_api": False},
    )
    assert finding(report, "rbac.wildcard").status is Status.FAIL
    assert report.mut == 2 and report.mut_credential == 1
    path = next(p for p in report.paths if p.from_.startswith("credential:"))
    assert "alice@example.com" in path.from_


def test_every_service_account_as_admin_makes_any_pod_admin():
    binding = cluster_role_binding("sa-admin", "cluster-admin", ("Group", "system:serviceaccounts"))
    report = assess(describe_cluster(), rbac=rbac_list(binding))
    assert finding(report, "rbac.serviceaccounts_admin").status is Status.FAIL
    assert report.mut_workload == 1  # the exploited app, and nothing more
    assert finding(report, "rbac.serviceaccounts_admin").mut_gain == 1


def test_a_public_group_short_of_admin_is_one_mistake_away():
    role = cluster_role("deployer", r(["create"], CORE, ["pods"]))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "everyone-deploys", "namespace": "dev"},
        "roleRef": {"apiGroup": RBAC_API, "kind": "ClusterRole", "name": "deployer"},
        "subjects": [{"apiGroup": RBAC_API, "kind": "Group", "name": "system:authenticated"}],
    }
    report = assess(describe_cluster(), rbac=rbac_list(role, binding))
    result = finding(report, "rbac.public_group_grant")
    assert result.status is Status.FAIL and "in namespace dev" in result.detail
    assert finding(report, "rbac.authenticated_admin").status is Status.PASS
    assert finding(report, "rbac.workload_create").status is Status.PASS  # reported once, above


def test_grants_in_kube_system_are_admin_equivalent():
    role = cluster_role("deployer", r(["create"], CORE, ["pods"]))
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "ci", "namespace": "kube-system"},
        "roleRef": {"apiGroup": RBAC_API, "kind": "ClusterRole", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": "ci"}],
    }
    report = assess(describe_cluster(), rbac=rbac_list(role, binding))
    result = finding(report, "rbac.workload_create")
    assert "default service account" in result.detail and "kube-system" in result.detail
