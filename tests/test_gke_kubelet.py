"""GKE's kubelet credential: the platform's own grant, and a real start only without Shielded Nodes.

What the expectations follow:
- GKE's ClusterRoleBinding kubelet-cluster-admin binds User `kubelet` to ClusterRole system:node
  (kubernetes/kubernetes cluster/addons/rbac/legacy-kubelet-user/kubelet-binding.yaml). The RBAC
  authorizer grants through it whatever system:node allows (get secrets, create pods and
  serviceaccounts/token, patch nodes); the Node authorizer and NodeRestriction limit only
  identities of the form system:node:<name> in group system:nodes
  (plugin/pkg/auth/authorizer/node/node_authorizer.go), not User `kubelet`.
- The credential of User `kubelet` is in each node's kube-env instance metadata. GKE's
  documentation (how-to/shielded-gke-nodes) says that without Shielded GKE Nodes an attacker who
  exfiltrates it from a pod can impersonate nodes and reach the cluster's secrets; the GKE
  metadata server (workloadMetadataConfig GKE_METADATA) hides kube-env from pods
  (how-to/protecting-cluster-metadata), root on the node still reads it.
So the binding is no finding of the user's; with Shielded Nodes off, a leaked kubelet credential
costs one mistake (the leak), a pod on a pool that shows kube-env one (the exploited app), and a
pod elsewhere two (the app, then an escape to root on its node).
"""

import pytest

from mutguard.models import Status
from mutguard.render.explain import explain

from builders import assess_gke, cluster_role_binding, finding, gke_cluster, rbac_list

KUBELET_BINDING = cluster_role_binding("kubelet-cluster-admin", "system:node", ("User", "kubelet"))
NODE_SA = "gke-nodes@shop-prod-1234.iam.gserviceaccount.com"  # no IAM power over the cluster
POWERS_OF_SYSTEM_NODE = {"rbac.secrets_read", "rbac.workload_create", "rbac.token_create"}


def cluster(shielded: bool, metadata: str = "GKE_METADATA") -> dict:
    document = gke_cluster(metadata=metadata, service_account=NODE_SA)
    document["shieldedNodes"] = {"enabled": True} if shielded else {}  # the API omits false
    return document


def failing_checks(report) -> set[str]:
    return {f.check_id for f in report.findings if f.status is Status.FAIL}


def test_the_kubelet_binding_is_the_platforms_and_says_when_it_is_a_start():
    report = assess_gke(cluster(shielded=True), rbac=rbac_list(KUBELET_BINDING))
    assert not failing_checks(report) & POWERS_OF_SYSTEM_NODE
    kubelet = [g for g in report.platform_grants if g.subject == "User kubelet"]
    assert {g.binding for g in kubelet} == {"ClusterRoleBinding kubelet-cluster-admin"}
    assert {g.power for g in kubelet} >= {"read every secret", "create service-account tokens"}
    assert all("gke.nodes.shielded" in g.why and "source: " in g.why for g in kubelet)
    assert "ClusterRoleBinding kubelet-cluster-admin lets User kubelet" in explain(report)


def test_with_shielded_nodes_the_kubelet_credential_is_no_start():
    report = assess_gke(cluster(shielded=True), rbac=rbac_list(KUBELET_BINDING))
    without_binding = assess_gke(cluster(shielded=True), rbac=rbac_list())
    assert finding(report, "gke.nodes.shielded").status is Status.PASS
    assert report.mut_credential == without_binding.mut_credential == 2
    assert not any(p.from_ == "credential:gke-kubelet" for p in report.paths)


def test_without_shielded_nodes_a_leaked_kubelet_credential_is_admin_after_one_mistake():
    report = assess_gke(cluster(shielded=False), rbac=rbac_list(KUBELET_BINDING))
    shielded = finding(report, "gke.nodes.shielded")
    assert shielded.status is Status.FAIL
    assert report.mut_credential == 1
    (path,) = [p for p in report.paths if p.from_ == "credential:gke-kubelet"]
    assert any("kubelet-cluster-admin" in step for step in path.steps)
    assert shielded.mut_gain == 1  # back to an ordinary leaked credential's 2
    # Still not the user's RBAC finding: the fix is Shielded Nodes, not the binding.
    assert not failing_checks(report) & POWERS_OF_SYSTEM_NODE


def test_without_the_binding_the_kubelet_credential_reaches_nothing():
    # The upstream "disable" variant binds nobody; User kubelet then holds no power.
    disabled = cluster_role_binding("kubelet-cluster-admin", "system:node")
    report = assess_gke(cluster(shielded=False), rbac=rbac_list(disabled))
    assert finding(report, "gke.nodes.shielded").status is Status.FAIL
    assert report.mut_credential == 2
    assert finding(report, "gke.nodes.shielded").mut_gain == 0


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        ("GCE_METADATA", 1),  # the exploited pod reads kube-env itself
        (None, 1),  # not set on a Standard cluster: the Compute Engine metadata server
        # kube-env hidden: an escape to root on the node first, no cheaper than the pod's own
        # token plus one bad binding
        ("GKE_METADATA", 2),
    ],
)
def test_a_compromised_pod_reaches_the_kubelet_credential_as_its_pool_allows(metadata, expected):
    report = assess_gke(cluster(shielded=False, metadata=metadata), rbac=rbac_list(KUBELET_BINDING))
    assert report.mut_workload == expected
    shielded = assess_gke(
        cluster(shielded=True, metadata=metadata), rbac=rbac_list(KUBELET_BINDING)
    )
    assert shielded.mut_workload == 2  # the pod's token, then one bad binding


def test_a_kubelet_binding_that_grants_more_than_the_platforms_is_the_users_finding():
    grown = cluster_role_binding(
        "kubelet-cluster-admin", "system:node", ("User", "kubelet"), ("Group", "ci")
    )
    report = assess_gke(cluster(shielded=True), rbac=rbac_list(grown))
    secrets = [f for f in report.findings if f.check_id == "rbac.secrets_read"]
    assert [f.status for f in secrets] == [Status.FAIL]
    assert "Group ci" in secrets[0].detail and "User kubelet" not in secrets[0].detail
