"""RBAC as the authorizer reads it, and the checks on grants to everyone."""

import pytest

from mutguard.errors import InputError
from mutguard.models import Status
from mutguard.rbac import RbacPolicy, Rule, admin_powers

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


def test_admin_powers():
    assert admin_powers([rule(["*"], ["*"], ["*"])]) == ["every verb on every resource"]
    assert admin_powers([rule(["list"], resources=["secrets"])]) == ["read every secret"]
    assert admin_powers([rule(["impersonate"], resources=["groups"])])
    assert admin_powers([rule(["bind"], ["rbac.authorization.k8s.io"], ["clusterroles"])])
    assert admin_powers([rule(["get"], resources=["nodes/proxy"])])
    assert admin_powers([rule(["get", "list"], resources=["pods", "configmaps"])]) == []
    assert admin_powers([rule(["get"], resources=["secrets"], names=["tls"])]) == []


@pytest.mark.parametrize("featuregates", [False, True])
def test_bootstrap_policy_is_the_safe_default(featuregates):
    # The feature-gated variant replaces roles only; the bindings stay those of the default.
    extra = bootstrap_items(featuregates=True) if featuregates else ()
    rbac = rbac_list(*extra)
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
    assert rules and admin_powers(rules) == []
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


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"kind": "ClusterRole"}, "kubectl List"),
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
def test_malformed_rbac_is_named(document, message):
    with pytest.raises(InputError, match=message):
        RbacPolicy.from_kubectl(document)


def test_unknown_selector_operator_is_an_error_finding_not_a_pass():
    support = cluster_role(
        "support", aggregate=[{"matchExpressions": [{"key": "a", "operator": "Near"}]}]
    )
    binding = cluster_role_binding("b", "support", ("Group", "system:authenticated"))
    report = assess(describe_cluster(), rbac=rbac_list(support, binding))
    result = finding(report, "rbac.authenticated_admin")
    assert result.status is Status.ERROR
    assert "Near" in result.detail and "prod" in result.detail
