"""Workloads in the attack graph: tokens, node escapes, Pod Security, GitOps."""

import pytest

from mutguard.models import Report, Status
from mutguard.render import render
from mutguard.workloads import Workloads

from builders import (
    OBSERVED_AT,
    assess,
    cluster_role,
    cluster_role_binding,
    describe_cluster,
    finding,
    kube_list,
    namespace,
    pod,
    rbac_list,
)

NODE_A = "ip-10-0-1-17.eu-west-1.compute.internal"
NODE_B = "ip-10-0-2-33.eu-west-1.compute.internal"
PRIVATE = {"public": False, "private": True}


def sa_binding(name, role, namespace_, account):
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": namespace_}],
    }


DEFAULT_SA_ADMIN = sa_binding("shop-default-admin", "cluster-admin", "shop", "default")


def test_default_token_with_cluster_admin():
    report = assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(DEFAULT_SA_ADMIN),
        workloads=kube_list(pod("web-1")),
    )
    token = finding(report, "workloads.token_automount")
    assert token.status is Status.FAIL and "use every verb on every resource" in token.detail
    assert report.mut_workload == 1  # the exploited app is the only mistake needed
    radius = {b.workload: b for b in report.blast_radius}
    assert radius["shop/web-1"].mut == 1
    assert "mut_workload" not in report.mut_upper_bound
    # Without the mounted token the attacker must still escape to the node that holds it.
    assert token.mut_gain == 1


def test_a_malformed_pod_is_skipped_alone_and_named():
    # A real API server refuses a pod whose containers are not a list; an edited workloads.json
    # may hold one. The other pods are still judged, the skipped one is named.
    broken = pod("db-0", "data", containers="postgres")
    privileged = pod(
        "web-1",
        containers=[{"name": "app", "image": "app:1", "securityContext": {"privileged": True}}],
    )
    report = assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(DEFAULT_SA_ADMIN),
        workloads=kube_list(broken, privileged),
    )
    assert report.errors == [
        "workloads.json: Pod data/db-0: spec.containers must be a list, not a string "
        "(skipped: what it holds is not counted)"
    ]
    assert finding(report, "workloads.node_escape").status is Status.FAIL
    assert finding(report, "workloads.token_automount").status is Status.FAIL
    skipped = finding(report, "workloads.unread_objects")
    assert skipped.status is Status.UNKNOWN and "Pod data/db-0" in skipped.detail
    assert [f for f in report.findings if f.status is Status.ERROR] == []
    # What the skipped pod runs is unknown: the compromised-pod MUT becomes a bound.
    clean = assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(DEFAULT_SA_ADMIN),
        workloads=kube_list(privileged),
    )
    assert "mut_workload" not in clean.mut_upper_bound
    assert set(report.mut_upper_bound) == {*clean.mut_upper_bound, "mut_workload"}


def test_a_workload_check_that_finds_nothing_cannot_pass_while_a_pod_is_skipped():
    report = assess(
        describe_cluster(**PRIVATE),
        workloads=kube_list(pod("db-0", "data", containers="postgres"), pod("web-1")),
    )
    assert finding(report, "workloads.node_escape").status is Status.UNKNOWN
    assert finding(report, "workloads.unread_objects").status is Status.UNKNOWN


def test_well_formed_workloads_are_all_read():
    report = assess(describe_cluster(**PRIVATE), workloads=kube_list(pod("web-1")))
    assert finding(report, "workloads.unread_objects").status is Status.PASS
    assert finding(report, "workloads.node_escape").status is Status.PASS


def test_unmounted_token_is_no_path():
    report = assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(DEFAULT_SA_ADMIN),
        workloads=kube_list(pod("web-1", automountServiceAccountToken=False)),
    )
    assert finding(report, "workloads.token_automount").status is Status.PASS
    assert report.mut_workload == 3  # exploit, escape to the node, then one more mistake


def test_privileged_pod_reads_a_powerful_token_on_its_node():
    agent = sa_binding("agent-admin", "cluster-admin", "monitoring", "agent")
    workloads = kube_list(
        pod(
            "web-1",
            containers=[{"name": "app", "image": "app:1", "securityContext": {"privileged": True}}],
        ),
        pod("agent-x7k", "monitoring", service_account="agent", owner=("DaemonSet", "agent")),
    )
    report = assess(describe_cluster(**PRIVATE), rbac=rbac_list(agent), workloads=workloads)
    escape = finding(report, "workloads.node_escape")
    assert escape.status is Status.FAIL and "privileged container app" in escape.detail
    web = next(b for b in report.blast_radius if b.workload == "shop/web-1")
    assert web.mut == 1
    assert any("reads the token of DaemonSet monitoring/agent" in step for step in web.steps)


def test_sensitive_host_paths_and_escape_capabilities():
    volumes = [
        {"name": "sock", "hostPath": {"path": "/run/containerd/containerd.sock"}},
        {"name": "logs", "hostPath": {"path": "/var/log/app"}},
    ]
    caps = [
        {
            "name": "app",
            "image": "app:1",
            "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}},
        }
    ]
    report = assess(
        describe_cluster(),
        workloads=kube_list(pod("runtime-probe", volumes=volumes), pod("tuner", containers=caps)),
    )
    details = [f.detail for f in report.findings if f.check_id == "workloads.node_escape"]
    assert details == [
        "Pod shop/runtime-probe: hostPath /run/containerd/containerd.sock (the container runtime)",
        "Pod shop/tuner: container app adds SYS_ADMIN",
    ]


def test_replicas_are_one_workload_and_idle_controllers_are_read_from_their_template():
    replicas = [
        pod(
            f"web-7d4b9c-{i}",
            owner=("ReplicaSet", "web-7d4b9c"),
            labels={"pod-template-hash": "7d4b9c"},
            node=node,
        )
        for i, node in enumerate((NODE_A, NODE_B, NODE_A))
    ]
    idle = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "batch", "namespace": "shop"},
        "spec": {
            "replicas": 0,
            "template": {"spec": {"hostPID": True, "containers": [{"name": "c"}]}},
        },
    }
    workloads = Workloads.from_kubectl(kube_list(*replicas, idle))
    assert [(str(w), w.nodes) for w in workloads.items] == [
        ("Deployment shop/batch", ()),
        ("Deployment shop/web", (NODE_A, NODE_B)),
    ]
    report = assess(describe_cluster(), workloads=kube_list(*replicas, idle))
    assert (
        finding(report, "workloads.host_namespaces").detail == "Deployment shop/batch uses hostPID"
    )


def test_service_account_setting_decides_the_automount():
    account = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "automountServiceAccountToken": False,
        "metadata": {"name": "default", "namespace": "shop"},
    }
    workloads = Workloads.from_kubectl(
        kube_list(account, pod("a"), pod("b", automountServiceAccountToken=True))
    )
    assert [(w.name, w.automount_token) for w in workloads.items] == [("a", False), ("b", True)]


def test_secret_env_reports_names_never_values():
    containers = [
        {
            "name": "app",
            "image": "app:1",
            "env": [
                {"name": "DB_PASSWORD", "value": "hunter2-very-secret"},
                {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "t", "key": "k"}}},
                {"name": "LOG_LEVEL", "value": "debug"},
            ],
        }
    ]
    report = assess(describe_cluster(), workloads=kube_list(pod("web", containers=containers)))
    result = finding(report, "workloads.secret_env")
    assert result.status is Status.FAIL
    assert result.detail.endswith("app:DB_PASSWORD (a credential by its name)")
    assert "hunter2" not in report.model_dump_json()


def test_security_context_checks():
    hardened = [
        {
            "name": "app",
            "image": "app:1",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsNonRoot": True,
                "runAsUser": 10001,
            },
        }
    ]
    good = assess(describe_cluster(), workloads=kube_list(pod("good", containers=hardened)))
    bad = assess(describe_cluster(), workloads=kube_list(pod("bad")))
    for check_id in ("workloads.privilege_escalation", "workloads.run_as_root"):
        assert finding(good, check_id).status is Status.PASS
        assert finding(bad, check_id).status is Status.FAIL


CREATE_PODS = {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}
PATCH_NAMESPACES = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["patch"]}


def role_binding_in_dev(name: str, role: str, subject: dict) -> dict:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": "dev"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [subject],
    }


def ci_in_dev(*rules: dict, namespaces: dict):
    """dev's ci service account holds `rules` in dev (a RoleBinding); its runner pod is there,
    and a monitoring agent with a cluster-admin token runs on another node."""
    ci = {"kind": "ServiceAccount", "name": "ci", "namespace": "dev"}
    return assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(
            cluster_role("deployer", *rules),
            role_binding_in_dev("ci", "deployer", ci),
            sa_binding("agent-admin", "cluster-admin", "monitoring", "agent"),
        ),
        workloads=kube_list(
            pod("ci-runner", "dev", service_account="ci"),
            pod("agent-1", "monitoring", service_account="agent", node=NODE_B),
        ),
        namespaces=namespaces,
    )


def runner_mut(report) -> int:
    return next(b for b in report.blast_radius if b.workload == "dev/ci-runner").mut


def test_pod_security_labels_open_a_node_to_whoever_creates_pods():
    namespaces = kube_list(
        namespace("dev"), namespace("shop", "restricted"), namespace("kube-system")
    )
    report = ci_in_dev(CREATE_PODS, namespaces=namespaces)
    psa = [f for f in report.findings if f.check_id == "workloads.pod_security"]
    assert [(f.status, f.resource) for f in psa] == [(Status.FAIL, "namespace dev")]
    # ci-runner creates a privileged pod in dev, placed on the agent's node, and reads its token.
    assert runner_mut(report) == 1
    labelled = ci_in_dev(CREATE_PODS, namespaces=kube_list(namespace("dev", "baseline")))
    assert runner_mut(labelled) == 2


def test_escalate_through_bind():
    binder = cluster_role(
        "binder",
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
        },
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterrolebindings"],
            "verbs": ["create"],
        },
    )
    report = assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(binder, sa_binding("rbac-manager", "binder", "tools", "manager")),
        workloads=kube_list(pod("manager-0", "tools", service_account="manager")),
    )
    assert finding(report, "rbac.escalate_bind").status is Status.FAIL
    assert report.mut_workload == 1


def test_policy_engine_and_gitops():
    webhooks = kube_list(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": "gatekeeper-validating-webhook-configuration"},
            "webhooks": [{"name": "validation.gatekeeper.sh"}],
        }
    )
    argocd = pod(
        "argocd-application-controller-0",
        "argocd",
        service_account="argocd-application-controller",
        owner=("StatefulSet", "argocd-application-controller"),
    )
    human = cluster_role_binding("devs-edit", "edit", ("Group", "developers"))
    report = assess(
        describe_cluster(), rbac=rbac_list(human), workloads=kube_list(argocd), admission=webhooks
    )
    assert finding(report, "workloads.policy_engine").status is Status.PASS
    assert finding(report, "gitops.operator").detail == "Argo CD runs in the cluster"
    human_write = finding(report, "gitops.human_write")
    assert human_write.status is Status.FAIL and "Group developers" in human_write.detail
    bare = assess(
        describe_cluster(), rbac=rbac_list(), workloads=kube_list(pod("web")), admission=kube_list()
    )
    assert finding(bare, "workloads.policy_engine").status is Status.FAIL
    assert finding(bare, "gitops.operator").status is Status.FAIL
    assert not [f for f in bare.findings if f.check_id == "gitops.human_write"]
    assert bare.maturity.gitops.value == "none"


@pytest.mark.parametrize("document", [{"items": "nope"}, {"items": [{"kind": "Pod"}]}])
def test_malformed_workloads_are_unknown_not_a_crash(document):
    report = assess(describe_cluster(), workloads=document)
    assert finding(report, "workloads.node_escape").status is Status.UNKNOWN
    assert any(e.startswith("workloads.json: ") for e in report.errors)
    assert "mut_workload" in report.mut_upper_bound


def test_reports_name_the_most_exposed_workload():
    cluster = assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(DEFAULT_SA_ADMIN),
        workloads=kube_list(pod("web-1")),
    )
    report = Report(generated_at=OBSERVED_AT, clusters=[cluster])
    table = render(report, "table")
    assert "most exposed workloads (MUT if its app is exploited):" in table
    assert "│   MUT 1  shop/web-1 " in table
    assert "Most exposed workload: `shop/web-1` (MUT 1)" in render(report, "markdown")


def test_capabilities_beyond_the_baseline():
    added = [
        {
            "name": "app",
            "image": "app:1",
            "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "NET_RAW"]}},
        }
    ]
    plain = [
        {
            "name": "app",
            "image": "app:1",
            "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
        }
    ]
    report = assess(describe_cluster(), workloads=kube_list(pod("a", containers=added)))
    assert finding(report, "workloads.capabilities").detail == "Pod shop/a adds app: NET_RAW"
    report = assess(describe_cluster(), workloads=kube_list(pod("b", containers=plain)))
    assert finding(report, "workloads.capabilities").status is Status.PASS


def test_patch_on_its_own_namespace_lifts_pod_security_for_whoever_creates_pods_there():
    # The request for /api/v1/namespaces/dev carries namespace dev (RequestInfoFactory in
    # k8s.io/apiserver/pkg/endpoints/request/requestinfo.go reads "namespaces/{name}" as the
    # namespace), so a RoleBinding in dev with patch on namespaces authorizes patching the
    # Namespace dev itself: its enforce label can go to privileged, and Pod Security admission
    # then admits a privileged pod.
    baseline = kube_list(namespace("dev", "baseline"))
    report = ci_in_dev(CREATE_PODS, PATCH_NAMESPACES, namespaces=baseline)
    relabel = finding(report, "rbac.namespace_relabel")
    assert relabel.status is Status.FAIL and "in namespace dev" in relabel.detail
    # baseline stops the privileged pod only until the label changes: ci-runner's compromise is
    # one mistake from admin, as in a namespace with no Pod Security level (test above); without
    # the patch it takes two.
    assert runner_mut(report) == 1
    assert runner_mut(ci_in_dev(CREATE_PODS, namespaces=baseline)) == 2


def test_patch_on_namespaces_without_creating_pods_is_no_relabel_power():
    alice = {"kind": "User", "name": "alice", "apiGroup": "rbac.authorization.k8s.io"}
    report = assess(
        describe_cluster(**PRIVATE),
        rbac=rbac_list(
            cluster_role("labeller", PATCH_NAMESPACES),
            role_binding_in_dev("labeller", "labeller", alice),
        ),
    )
    assert finding(report, "rbac.namespace_relabel").status is Status.PASS
