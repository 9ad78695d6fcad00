"""hostPath volumes judged by what the node path gives: the path itself or anything below it."""

import pytest

from mutguard.models import Status
from mutguard.workloads import (
    HostPathMount,
    NodeAccess,
    Workloads,
    judge_host_path,
    normalised_host_path,
)

from builders import assess, describe_cluster, finding, kube_list, pod, rbac_list

TAKEOVER, TOKENS, NONE = NodeAccess.TAKEOVER, NodeAccess.TOKENS, NodeAccess.NONE

# (path, readOnly, verdict); each verdict follows from what the path holds on a node.
CASES = [
    # the node's root holds the runtime sockets, usable through a read-only mount too
    ("/", False, TAKEOVER),
    ("/", True, TAKEOVER),
    # /var holds /var/run/docker.sock and /var/lib/kubelet
    ("/var", False, TAKEOVER),
    ("/var", True, TAKEOVER),
    # /var/lib holds the kubelet's directory: writable, its config and every pod's volumes
    ("/var/lib", False, TAKEOVER),
    # ...read-only, still the kubelet's client key and every pod's token
    ("/var/lib", True, TOKENS),
    # every pod's projected token on the node, read-only or not
    ("/var/lib/kubelet/pods", True, TOKENS),
    ("/var/lib/kubelet/pods", False, TOKENS),
    # the kubelet's client certificate and key: act as the node
    ("/var/lib/kubelet/pki", True, TOKENS),
    # /run and /var/run hold containerd's, CRI-O's and Docker's sockets
    ("/run", True, TAKEOVER),
    ("/var/run", False, TAKEOVER),
    # the socket itself, written with dots and a trailing slash
    ("/var/./run/../run/docker.sock/", True, TAKEOVER),
    ("//run//containerd/containerd.sock", True, TAKEOVER),
    ("/run/k3s/containerd/containerd.sock", True, TAKEOVER),
    # kubelet kubeconfig and static pod manifests: writable is a static privileged pod
    ("/etc/kubernetes", False, TAKEOVER),
    # read-only, the kubelet's credentials
    ("/etc/kubernetes", True, TOKENS),
    # /etc holds /etc/kubernetes: read-only it still gives the kubelet's credentials
    ("/etc", True, TOKENS),
    # writable /etc: cron, systemd units, users
    ("/etc", False, TAKEOVER),
    # writable kernel settings through the host's /proc and /sys
    ("/proc", False, TAKEOVER),
    ("/sys", False, TAKEOVER),
    # read-only /sys reads kernel settings, holds no credential
    ("/sys", True, NONE),
    # GKE's kubelet binaries and configuration
    ("/home/kubernetes", False, TAKEOVER),
    # the kubelet serves /var/log following planted symlinks: any node file, tokens included
    ("/var/log", False, TOKENS),
    # read-only logs plant nothing
    ("/var/log", True, NONE),
    # below /var/log, not an ancestor of anything sensitive
    ("/var/log/app", False, NONE),
    # app data: holds no node path that matters
    ("/data", False, NONE),
    # a sibling of /var/lib/kubelet, not its ancestor
    ("/var/lib/app-data", False, NONE),
    ("/opt", False, NONE),
    # a name that only starts like a sensitive one
    ("/var/lib/kubelet-plugins-data", False, NONE),
    # `..` cannot climb above the root: this is /tmp
    ("/../../tmp", False, NONE),
]


@pytest.mark.parametrize(("path", "read_only", "expected"), CASES)
def test_host_path_verdicts(path, read_only, expected):
    assert judge_host_path(HostPathMount(path, read_only)).access is expected


@pytest.mark.parametrize("path", ["", "var/run/docker.sock", "./data"])
def test_a_relative_or_empty_path_is_not_judged(path):
    assert normalised_host_path(path) is None
    verdict = judge_host_path(HostPathMount(path, False))
    assert verdict.access is None and "unknown" in verdict.why


def test_normalisation():
    assert normalised_host_path("/var/./lib/../run/") == "/var/run"
    assert normalised_host_path("//") == "/"


def test_a_volume_is_read_only_only_if_every_mount_says_so():
    volumes = [
        {"name": "both", "hostPath": {"path": "/var/lib/kubelet"}},
        {"name": "ro", "hostPath": {"path": "/var/lib/kubelet/pods"}},
        {"name": "unmounted", "hostPath": {"path": "/srv"}},
    ]
    containers = [
        {
            "name": "a",
            "volumeMounts": [
                {"name": "both", "mountPath": "/k", "readOnly": True},
                {"name": "ro", "mountPath": "/p", "readOnly": True},
            ],
        },
        {"name": "b", "volumeMounts": [{"name": "both", "mountPath": "/k"}]},
    ]
    workloads = Workloads.from_kubectl(
        kube_list(pod("agent", volumes=volumes, containers=containers))
    )
    assert workloads.items[0].host_paths == (
        HostPathMount("/var/lib/kubelet", False),
        HostPathMount("/var/lib/kubelet/pods", True),
        HostPathMount("/srv", False),  # an ephemeral container may mount it later
    )


def read_only_mount(path):
    return {
        "volumes": [{"name": "host", "hostPath": {"path": path}}],
        "containers": [
            {
                "name": "agent",
                "image": "agent:1",
                "volumeMounts": [{"name": "host", "mountPath": "/host", "readOnly": True}],
            }
        ],
    }


ADMIN_AGENT = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRoleBinding",
    "metadata": {"name": "agent-admin"},
    "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "cluster-admin",
    },
    "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "monitoring"}],
}


def test_read_only_pods_directory_steals_the_tokens_on_the_node():
    workloads = kube_list(
        pod(
            "log-reader",
            automountServiceAccountToken=False,
            **read_only_mount("/var/lib/kubelet/pods"),
        ),
        pod("agent-1", "monitoring", service_account="agent", owner=("DaemonSet", "agent")),
    )
    report = assess(
        describe_cluster(public=False, private=True),
        rbac=rbac_list(ADMIN_AGENT),
        workloads=workloads,
    )
    tokens = finding(report, "workloads.host_path_tokens")
    assert tokens.status is Status.FAIL
    assert tokens.detail == (
        "Pod shop/log-reader: hostPath /var/lib/kubelet/pods read-only "
        "(every pod's volumes and tokens on the node)"
    )
    assert finding(report, "workloads.node_escape").status is Status.PASS  # no takeover
    reader = next(b for b in report.blast_radius if b.workload == "shop/log-reader")
    assert reader.mut == 1  # the exploit; the admin token is read off the node
    without = assess(
        describe_cluster(public=False, private=True),
        rbac=rbac_list(ADMIN_AGENT),
        workloads=kube_list(
            pod("log-reader", automountServiceAccountToken=False),
            pod("agent-1", "monitoring", service_account="agent", owner=("DaemonSet", "agent")),
        ),
    )
    assert next(b for b in without.blast_radius if b.workload == "shop/log-reader").mut == 2
    assert any("include that of DaemonSet monitoring/agent" in step for step in reader.steps)


def test_read_only_var_run_is_a_node_escape_and_data_is_harmless():
    report = assess(
        describe_cluster(),
        workloads=kube_list(
            pod("runtime-probe", **read_only_mount("/var/run")),
            pod("cache", **read_only_mount("/data")),
        ),
    )
    escape = finding(report, "workloads.node_escape")
    assert escape.detail == (
        "Pod shop/runtime-probe: hostPath /var/run read-only "
        "(holds /var/run/containerd/containerd.sock: the container runtime)"
    )
    assert finding(report, "workloads.host_path_tokens").status is Status.PASS


def test_an_invalid_host_path_is_unknown_with_its_reason():
    report = assess(describe_cluster(), workloads=kube_list(pod("odd", **read_only_mount("data"))))
    escape = finding(report, "workloads.node_escape")
    assert escape.status is Status.UNKNOWN
    assert (
        escape.detail
        == "Pod shop/odd: hostPath 'data' is not an absolute path, so what it mounts is unknown"
    )
