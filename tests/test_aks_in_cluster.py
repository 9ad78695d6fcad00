"""AKS in-cluster reads end to end: the real ContainerServiceClient lists the clusters from the
local ARM server and, for an Entra ID cluster only, asks it for the user kubeconfig
(listClusterUserCredential, format=exec), whose server and CA lead the real `kubernetes` client
to the local HTTPS Kubernetes API server, which accepts the Entra ID token issued for the AKS
server application; a cluster with local accounts only is never asked for a credential."""

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

from mutguard.cli import build_parser
from mutguard.models import Status
from mutguard.providers import PROVIDERS, snapshot
from mutguard.providers.aks_live import AksCollector, AzureOptions
from mutguard.scan import build_report

from builders import (
    FIXTURES,
    OBSERVED_AT,
    bootstrap_items,
    cluster_role_binding,
    finding,
    namespace,
    pod,
)
from servers.aks import ArmServer
from servers.tls import TestCa

SUB = "00000000-0000-0000-0000-000000000001"
ARM_SCOPE = "https://management.azure.com/.default"
AKS_SCOPE = "6dae42f8-4368-4678-94ff-3960e28e3630/.default"  # the AKS AAD server application
ARM_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.arm-audience-token"
AKS_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.aks-audience-token"
SCANNER = "a1b2c3d4-0000-0000-0000-000000000000"  # the scanner's Entra object id
ENTRA = json.loads((FIXTURES / "aks" / "managed-cluster.arm.json").read_text())  # managed AAD
CLUSTERS = r"/subscriptions/{}/resourceGroups/a-test-wf-rg/providers/Microsoft\.ContainerService"
USER_CREDENTIAL = CLUSTERS.format(SUB) + r"/managedClusters/{}/listClusterUserCredential"
ADMIN_CREDENTIAL = r".*/listClusterAdminCredential"
ANONYMOUS_ADMIN = cluster_role_binding(
    "anonymous-admin", "cluster-admin", ("Group", "system:unauthenticated")
)


class EntraTokens:
    """A TokenCredential issuing one token per audience, as Entra ID does; records the scopes."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []
        self.tokens = {(ARM_SCOPE,): ARM_TOKEN, (AKS_SCOPE,): AKS_TOKEN}

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if scopes not in self.tokens:
            raise ClientAuthenticationError(f"AADSTS500011: no resource for {scopes}")
        return AccessToken(self.tokens[scopes], int(time.time()) + 3600)


def local_only_cluster() -> dict[str, Any]:
    """The fixture cluster renamed, without Entra ID: reachable by local accounts only."""
    cluster = json.loads(json.dumps(ENTRA))
    cluster["id"] = cluster["id"].replace("a-test-wf-aks", "legacy")
    cluster["name"] = "legacy"
    cluster["properties"].pop("aadProfile")
    cluster["properties"]["disableLocalAccounts"] = False
    return cluster


@pytest.fixture
def arm(test_ca: TestCa, kube_api, monkeypatch: pytest.MonkeyPatch):
    """Subscription SUB: the Entra ID cluster, whose API server is the local fake, and a
    local-accounts-only cluster."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with ArmServer(test_ca, ARM_TOKEN) as server:
        server.add_subscription(SUB)
        server.add_cluster(SUB, ENTRA)
        server.add_cluster(SUB, local_only_cluster())
        server.set_cluster_endpoint(ENTRA["id"], kube_api.url, kube_api.ca_pem)
        kube_api.add_token(AKS_TOKEN, SCANNER, ["mutguard-readers"])
        kube_api.add_list({"kind": "List", "items": list(bootstrap_items())})
        yield server


@pytest.fixture
def credential() -> EntraTokens:
    return EntraTokens()


@pytest.fixture
def collect(arm: ArmServer, credential: EntraTokens, test_ca: TestCa, tmp_path: Path):
    ca_file = tmp_path / "arm-ca.pem"
    ca_file.write_bytes(test_ca.ca_pem)
    options = AzureOptions(
        subscriptions=(SUB,),
        credential=credential,
        base_url=arm.url,
        connection_verify=str(ca_file),
        max_attempts=1,
    )
    return lambda: list(AksCollector(options).collect())


def scan(collect) -> dict[str, Any]:
    return {c.name: c for c in build_report(collect(), OBSERVED_AT).clusters}


def test_an_entra_cluster_is_read_inside_with_an_aks_token(arm, kube_api, credential, collect):
    kube_api.add(ANONYMOUS_ADMIN)
    kube_api.add(pod("web-1"))
    kube_api.add(namespace("shop"))
    cluster = scan(collect)["a-test-wf-aks"]
    assert cluster.errors == []
    assert cluster.mut == 0
    assert finding(cluster, "rbac.anonymous_admin").status is Status.FAIL
    assert [b.workload for b in cluster.blast_radius] == ["shop/web-1"]
    assert finding(cluster, "aks.auth.anonymous").detail.endswith("(probe)")
    # One read-only credential call, for this cluster; only GETs to the Kubernetes API, as the
    # scanner's Entra identity with the token for the AKS server application.
    assert arm.requests_seen("POST", USER_CREDENTIAL.format("a-test-wf-aks")) == 1
    assert arm.methods_seen() == {"GET", "POST"}
    assert kube_api.requests_seen("*", ".*") == kube_api.requests_seen("GET", ".*")
    assert kube_api.identities_seen() == ["system:anonymous", SCANNER]
    assert (AKS_SCOPE,) in credential.scopes


def test_a_local_accounts_only_cluster_is_unknown_and_no_credential_is_asked(arm, collect):
    cluster = scan(collect)["legacy"]
    rbac = finding(cluster, "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN
    assert "reachable only by static local accounts" in rbac.detail
    assert "RBAC is UNKNOWN" in rbac.detail
    assert any("reachable only by static local accounts" in e for e in cluster.errors)
    assert cluster.mut is not None and "mut" in cluster.mut_upper_bound
    assert arm.requests_seen("POST", USER_CREDENTIAL.format("legacy")) == 0
    assert arm.requests_seen("*", ADMIN_CREDENTIAL) == 0


def test_a_legacy_azure_ad_cluster_is_unknown_and_no_credential_is_asked(arm, collect):
    legacy = local_only_cluster()
    legacy["id"] = legacy["id"].replace("/legacy", "/aadv1")
    legacy["name"] = "aadv1"
    legacy["properties"]["aadProfile"] = {"managed": False, "serverAppID": "legacy-server-app"}
    arm.add_cluster(SUB, legacy)
    rbac = finding(scan(collect)["aadv1"], "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN and "legacy Azure AD integration" in rbac.detail
    assert arm.requests_seen("POST", USER_CREDENTIAL.format("aadv1")) == 0


def test_a_forbidden_resource_is_unknown_naming_the_permission(arm, kube_api, collect):
    kube_api.forbid(SCANNER, "roles.rbac.authorization.k8s.io")
    cluster = scan(collect)["a-test-wf-aks"]
    rbac = finding(cluster, "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN
    assert "403 Forbidden" in rbac.detail and 'cannot list resource "roles"' in rbac.detail
    assert finding(cluster, "workloads.node_escape").status is Status.PASS  # the rest was read


def test_a_denied_credential_call_is_unknown_naming_the_action(arm, kube_api, collect):
    arm.add_fault(
        USER_CREDENTIAL.format("a-test-wf-aks"),
        403,
        "AuthorizationFailed",
        f"The client '{SCANNER}' with object id '{SCANNER}' does not have authorization to "
        "perform action 'Microsoft.ContainerService/managedClusters/listClusterUserCredential/"
        "action' over scope '/subscriptions/...' or the scope is invalid.",
    )
    cluster = scan(collect)["a-test-wf-aks"]
    rbac = finding(cluster, "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN
    assert rbac.detail.startswith(
        "RBAC not read: Microsoft.ContainerService/managedClusters/listClusterUserCredential/"
        "action: AuthorizationFailed: The client"
    )
    assert cluster.mut is not None
    assert kube_api.requests_seen("*", ".*") == 0


def test_no_token_for_aks_is_unknown_with_the_reason(arm, kube_api, credential, collect):
    del credential.tokens[(AKS_SCOPE,)]  # e.g. a tenant that blocks the AKS server application
    cluster = scan(collect)["a-test-wf-aks"]
    rbac = finding(cluster, "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN
    assert "could not get an Entra ID token for AKS: AADSTS500011" in rbac.detail
    assert kube_api.requests_seen("*", "/api/.*|/apis/.*") == 0  # only the anonymous probe
    assert cluster.mut is not None


def test_live_scan_equals_its_snapshot_and_holds_no_token(arm, kube_api, collect, tmp_path):
    kube_api.add(ANONYMOUS_ADMIN)
    items = collect()
    out = tmp_path / "snapshot"
    for item in items:
        snapshot.write(item, out)
    observed = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    live = build_report(items, observed)
    offline = build_report(snapshot.read(out), observed)

    def essence(report):
        return [c.model_dump() for c in sorted(report.clusters, key=lambda c: c.name)]

    assert essence(live) == essence(offline)
    written = "".join(p.read_text() for p in out.rglob("*.json"))
    assert "rbac.json" in {p.name for p in out.rglob("*.json")}
    for secret in (AKS_TOKEN, ARM_TOKEN, "kubelogin", "certificate-authority-data"):
        assert secret not in written and secret not in live.to_json()


@pytest.mark.parametrize(("flag", "expected"), [([], True), (["--skip-in-cluster"], False)])
def test_skip_in_cluster_reaches_the_azure_options(flag, expected):
    args = build_parser().parse_args(["scan", "--provider", "azure", *flag])
    assert PROVIDERS.get("azure").command_line.options(args).in_cluster is expected
