"""GKE in-cluster reads end to end: the real google-cloud-container client lists the cluster from
the local GkeServer with Google credentials whose token endpoint is that server; the access token
it issued is the bearer token the local HTTPS Kubernetes API server accepts, verified against the
CA the cluster resource reports, and the real `kubernetes` client reads RBAC and workloads."""

from datetime import UTC, datetime

import pytest
from google.oauth2.credentials import Credentials

from mutguard.cli import build_parser
from mutguard.models import Status
from mutguard.providers import PROVIDERS, snapshot
from mutguard.providers.gke_live import GcpOptions, GkeCollector
from mutguard.scan import build_report

from builders import (
    OBSERVED_AT,
    bootstrap_items,
    cluster_role_binding,
    finding,
    gke_cluster,
    namespace,
    pod,
)
from servers.gke import TEST_TOKEN, GkeServer

PROJECT = "shop-prod-1234"
SCANNER = "mutguard-scanner@shop-prod-1234.iam.gserviceaccount.com"  # GKE's name for the SA
ANONYMOUS_ADMIN = cluster_role_binding(
    "anonymous-admin", "cluster-admin", ("Group", "system:unauthenticated")
)


@pytest.fixture
def gke(kube_api, monkeypatch):
    """Cluster `web` (public, anonymous ENABLED, insecure bindings allowed: the seed setting)
    whose API server is the local fake, which accepts the scanner's Google access token."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the kubernetes client honours proxy variables
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with GkeServer() as server:
        cluster = gke_cluster("web", project=PROJECT, anonymous="ENABLED", bindings_allowed=True)
        server.add_cluster(PROJECT, cluster)
        server.set_cluster_endpoint(PROJECT, "web", kube_api.url, kube_api.ca_pem)
        kube_api.add_token(TEST_TOKEN, SCANNER, ["mutguard-readers"])
        kube_api.add_list({"kind": "List", "items": list(bootstrap_items())})
        yield server


def collect(fake: GkeServer) -> list:
    """A live scan whose credentials (authorized_user ADC) get their token from the fake."""
    credentials = Credentials(
        None,
        refresh_token="1//mutguard-test-refresh-token",
        token_uri=f"{fake.url}/token",
        client_id="mutguard-test.apps.googleusercontent.com",
        client_secret="not-a-secret",
    )
    options = GcpOptions(
        projects=(PROJECT,),
        credentials=credentials,
        container_client_options={"api_endpoint": fake.url},
        retry_timeout=5,
    )
    return list(GkeCollector(options).collect())


def scan(fake: GkeServer, name: str = "web"):
    report = build_report(collect(fake), OBSERVED_AT)
    return next(c for c in report.clusters if c.name == name)


def test_rbac_and_workloads_are_read_inside_with_the_scans_token(gke, kube_api):
    kube_api.add(ANONYMOUS_ADMIN)
    kube_api.add(pod("web-1"))
    kube_api.add(namespace("shop"))
    cluster = scan(gke)
    assert cluster.errors == []
    assert cluster.mut == 0 and "mut" not in cluster.mut_upper_bound
    assert finding(cluster, "rbac.anonymous_admin").status is Status.FAIL
    assert [b.workload for b in cluster.blast_radius] == ["shop/web-1"]
    assert finding(cluster, "gke.auth.anonymous").detail.endswith("(probe)")
    # Read-only, as the scanner's Google identity; the probe went out without credentials.
    assert kube_api.requests_seen("*", ".*") == kube_api.requests_seen("GET", ".*")
    assert kube_api.identities_seen() == ["system:anonymous", SCANNER]
    assert gke.authorizations == {f"Bearer {TEST_TOKEN}"}  # one token, for both APIs


def test_default_rbac_read_inside_is_mut_one(gke):
    cluster = scan(gke)
    assert (cluster.mut, finding(cluster, "rbac.anonymous_admin").status) == (1, Status.PASS)


def test_a_forbidden_resource_is_unknown_naming_the_permission(gke, kube_api):
    kube_api.forbid(SCANNER, "roles.rbac.authorization.k8s.io")
    cluster = scan(gke)
    rbac = finding(cluster, "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN
    assert "403 Forbidden" in rbac.detail and 'cannot list resource "roles"' in rbac.detail
    assert finding(cluster, "workloads.node_escape").status is Status.PASS  # the rest was read
    assert cluster.mut is not None and "mut" in cluster.mut_upper_bound


def test_a_refused_token_is_refreshed_once_then_reported(gke, kube_api):
    kube_api.add_token(TEST_TOKEN, SCANNER, ["mutguard-readers"], expires_after=2)
    cluster = scan(gke)
    rbac = finding(cluster, "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN and "401 Unauthorized" in rbac.detail
    assert gke.requests_seen("POST", "/token") > 1  # a fresh token was asked for after the 401
    assert cluster.mut is not None


def test_a_private_cluster_is_read_through_its_private_endpoint(gke, kube_api):
    gke.add_cluster(PROJECT, gke_cluster("warehouse", project=PROJECT, public=False))
    gke.set_cluster_endpoint(PROJECT, "warehouse", kube_api.url, kube_api.ca_pem)
    cluster = scan(gke, "warehouse")
    assert cluster.errors == [] and cluster.mut == 3


def test_a_dns_endpoint_only_cluster_is_unknown_and_nothing_is_dialled(gke, kube_api):
    dns_only = gke_cluster("edge", project=PROJECT, public=False)
    dns_only["controlPlaneEndpointsConfig"]["ipEndpointsConfig"] = {"enabled": False}
    gke.add_cluster(PROJECT, dns_only)
    cluster = scan(gke, "edge")
    assert "reports no IP endpoint" in finding(cluster, "rbac.anonymous_admin").detail
    assert cluster.mut is not None
    assert kube_api.requests_seen("GET", "/version") == 1  # only web's probe: edge not dialled


def test_live_scan_equals_its_snapshot_and_holds_no_token(gke, kube_api, tmp_path):
    kube_api.add(ANONYMOUS_ADMIN)
    items = collect(gke)
    for item in items:
        snapshot.write(item, tmp_path)
    (directory,) = tmp_path.iterdir()
    assert {"cluster.json", "rbac.json", "probe.json"} <= {p.name for p in directory.iterdir()}
    observed = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    live = build_report(items, observed)
    offline = build_report(snapshot.read(tmp_path), observed)
    assert [c.model_dump() for c in live.clusters] == [c.model_dump() for c in offline.clusters]
    written = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert TEST_TOKEN not in written and TEST_TOKEN not in live.to_json()


@pytest.mark.parametrize(("flag", "expected"), [([], True), (["--skip-in-cluster"], False)])
def test_skip_in_cluster_reaches_the_gcp_options(flag, expected):
    args = build_parser().parse_args(["scan", "--provider", "gcp", *flag])
    assert PROVIDERS.get("gcp").command_line.options(args).in_cluster is expected
