"""Provider `kubernetes` offline: mutguard's own cluster.json, both checks (PASS, FAIL, UNKNOWN),
and the MUT seeds for a cluster whose network exposure cannot be read."""

import json

import pytest

from mutguard.cli import EXIT_OK, main
from mutguard.models import Status
from mutguard.providers import detect
from mutguard.providers.kubernetes import cluster_document, looks_like
from mutguard.scan import evaluate
from mutguard.sources import ClusterSource, Provider

from builders import (
    OBSERVED_AT,
    cluster_role_binding,
    describe_cluster,
    gke_cluster,
    kube_list,
    pod,
    rbac_list,
)

SERVER = "https://10.20.0.10:6443"
# GET /version of a kubeadm-built control plane: the answer's shape is version.Info.
VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.4",
    "gitCommit": "74cdb426183ba3bd5b2e2d8e2e3f5c2a6f4a3b1c",
    "gitTreeState": "clean",
    "buildDate": "2025-08-12T17:05:13Z",
    "goVersion": "go1.24.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}
ANONYMOUS_ON = {"anonymous_version": True, "anonymous_api": False}
ANONYMOUS_OFF = {"anonymous_version": False, "anonymous_api": False}
ANONYMOUS_ADMIN = cluster_role_binding(
    "anonymous-admin", "cluster-admin", ("Group", "system:unauthenticated")
)


def assess(cluster_json, **documents):
    docs = {"cluster.json": cluster_json}
    docs.update({f"{key}.json": value for key, value in documents.items()})
    return evaluate(ClusterSource(Provider.KUBERNETES, "dir-name", documents=docs), OBSERVED_AT)


def finding(report, check_id):
    (result,) = [f for f in report.findings if f.check_id == check_id]
    return result


def lab(server=SERVER, version=VERSION):
    return cluster_document(server, "lab-admin@lab", version)


def test_detected_by_shape_and_no_other_provider_looks_alike():
    assert detect(lab()) is Provider.KUBERNETES
    assert detect(lab(version=None)) is Provider.KUBERNETES
    assert not looks_like(describe_cluster()) and not looks_like(gke_cluster())
    assert detect(describe_cluster()) is Provider.EKS


def test_parsed_cluster_is_named_after_the_context_and_located_at_the_server():
    report = assess(lab(), probe=ANONYMOUS_OFF, rbac=rbac_list())
    assert report.errors == []
    assert (report.provider, report.name, report.location, report.account) == (
        Provider.KUBERNETES,
        "lab-admin@lab",
        "10.20.0.10:6443",
        "",
    )
    assert report.arn_or_id == SERVER


def test_unknown_fields_are_ignored():
    document = lab()
    document["kubernetes"]["clusterExtensions"] = {"future": True}
    document["kubernetes"]["version"]["emulationMajor"] = "1"
    assert assess(document).errors == []


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"kubernetes": {"context": "lab"}}, "kubernetes.server: Field required"),
        ({"kubernetes": {"server": SERVER, "context": 7}}, "kubernetes.context"),
        (
            {"kubernetes": {"server": SERVER, "context": "lab", "version": "v1.33"}},
            "kubernetes.version",
        ),
    ],
)
def test_a_malformed_field_is_a_cluster_error_naming_it(document, named):
    report = assess(document)
    assert report.mut is None and named in report.errors[0]


@pytest.mark.parametrize(
    ("probe", "expected", "detail"),
    [
        (ANONYMOUS_ON, Status.FAIL, "answered GET /version without credentials (probe)"),
        (ANONYMOUS_OFF, Status.PASS, "refused unauthenticated requests (probe)"),
        (None, Status.UNKNOWN, "the API server was not probed: probe.json was not collected"),
    ],
)
def test_anonymous_auth(probe, expected, detail):
    documents = {"probe": probe} if probe is not None else {}
    report = assess(lab(), rbac=rbac_list(), **documents)
    result = finding(report, "kubernetes.auth.anonymous")
    assert result.status is expected and detail in result.detail
    if probe is None:
        assert any("--anonymous-auth=true" in basis for basis in report.mut_basis)


@pytest.mark.parametrize(
    ("server", "said"),
    [
        (
            "https://127.0.0.1:16443",
            "loopback address (127.0.0.1), from its own host or through a tunnel",
        ),
        (SERVER, "non-public address (10.20.0.10), but a NAT, load balancer"),
        ("https://34.90.12.7:6443", "on a public address (34.90.12.7); a firewall may still"),
        ("https://k8s.lab.example.com", "host name 'k8s.lab.example.com'"),
    ],
)
def test_endpoint_exposure_is_never_known_from_a_kubeconfig(server, said):
    # No address proves exposure either way: a private one can sit behind a NAT or a load
    # balancer, a public one behind a firewall. So the check is UNKNOWN (never PASS or FAIL),
    # MUT assumes the network barrier holds, and says that `mut` is an upper bound.
    report = assess(lab(server), probe=ANONYMOUS_OFF, rbac=rbac_list())
    result = finding(report, "kubernetes.endpoint.exposure")
    assert result.status is Status.UNKNOWN and said in result.detail
    assert {"mut", "mut_credential"} <= set(report.mut_upper_bound)
    assumed = "network: the API server is assumed not open"
    assert any(basis.startswith(assumed) for basis in report.mut_basis)
    assert report.maturity.network.value == "unknown"


@pytest.mark.parametrize(
    ("probe", "extra", "expected"),
    [
        (ANONYMOUS_ON, [ANONYMOUS_ADMIN], 1),
        (ANONYMOUS_ON, [], 2),
        (ANONYMOUS_OFF, [], 3),
    ],
    ids=["anonymous-cluster-admin", "anonymous-default-rbac", "anonymous-off"],
)
def test_seed_examples_with_the_network_assumed(probe, extra, expected):
    # DESIGN's seeds are 0, 1, 2 for a public endpoint and 3 for a private one. A self-managed
    # cluster's exposure cannot be read, so the network barrier is assumed to hold: each public
    # seed comes out one higher, as an upper bound, and "private" cannot be told from the third.
    report = assess(lab(), rbac=rbac_list(*extra), probe=probe)
    assert report.mut == expected and "mut" in report.mut_upper_bound
    internet = next(p for p in report.paths if p.from_ == "internet")
    assert internet.steps[0].startswith("network (1): the API endpoint is not open")
    if extra:
        fix = finding(report, "rbac.anonymous_admin")
        assert fix.status is Status.FAIL and fix.mut_gain == 1


def test_workloads_and_rbac_are_judged_as_for_any_provider():
    privileged = pod("debug", containers=[{"name": "sh", "securityContext": {"privileged": True}}])
    report = assess(lab(), rbac=rbac_list(), probe=ANONYMOUS_OFF, workloads=kube_list(privileged))
    assert finding(report, "workloads.node_escape").status is Status.FAIL
    assert [b.workload for b in report.blast_radius] == ["shop/debug"]


def test_cli_scans_a_kubernetes_snapshot(capsys, tmp_path):
    (tmp_path / "cluster.json").write_text(json.dumps(lab()))
    (tmp_path / "probe.json").write_text(json.dumps(ANONYMOUS_OFF))
    (tmp_path / "rbac.json").write_text(json.dumps(rbac_list()))
    code = main(["scan", "--snapshot", str(tmp_path), "--format", "json"])
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    assert code == EXIT_OK
    assert (cluster["provider"], cluster["name"]) == ("kubernetes", "lab-admin@lab")
    assert cluster["mut"] == 3
