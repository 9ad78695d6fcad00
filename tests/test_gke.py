"""GKE: the gcloud describe document, every GKE check (PASS, FAIL, UNKNOWN), and MUT on GKE.

Where GKE's facts move a seed number (docs/architecture.md, MUT) away from EKS's:
- public endpoint, anonymous auth off, default RBAC: MUT 1, not 2. GKE authenticates any Google
  account as system:authenticated, so authentication is no barrier; one bad binding to that
  group remains. When rbacBindingConfig refuses such bindings, someone must first allow them:
  MUT 2, as on EKS.
- private endpoint, anonymous auth off: MUT 2, not 3, for the same reason; 3 with the refusal.
"""

import copy
import json
import typing

import pytest
from google.cloud.container_v1.types import Cluster
from google.protobuf import json_format

from mutguard.cli import main
from mutguard.models import Status
from mutguard.providers import detect, gke
from mutguard.scan import build_report
from mutguard.sources import Provider

from builders import (
    CLOUD_PLATFORM,
    FIXTURES,
    OBSERVED_AT,
    assess_gke,
    cluster_role_binding,
    describe_cluster,
    finding,
    gke_cluster,
    gke_source,
    kube_list,
    pod,
    rbac_list,
)

ANONYMOUS_ON = {"anonymous_version": True, "anonymous_api": False}
ANONYMOUS_OFF = {"anonymous_version": False, "anonymous_api": False}
ANONYMOUS_ADMIN = cluster_role_binding(
    "anonymous-admin", "cluster-admin", ("Group", "system:unauthenticated")
)
NODE = "gke-prod-default-pool-5e1f0b2a-x7k2"
HARDENED = {
    "public": False,
    "anonymous": "LIMITED",
    "bindings_allowed": False,
    "metadata": "GKE_METADATA",
    "service_account": "gke-nodes@shop-prod-1234.iam.gserviceaccount.com",
}


def status(check_id, cluster=None, resource=None, **documents):
    return finding(assess_gke(cluster or gke_cluster(), **documents), check_id, resource)


def pool_resource(pool="default-pool"):
    return f"projects/shop-prod-1234/locations/europe-west1-b/clusters/prod/nodePools/{pool}"


def with_field(cluster, path, value):
    """A copy of cluster with the dotted camelCase path set (None removes it)."""
    cluster = copy.deepcopy(cluster)
    *parents, last = path.split(".")
    target = cluster
    for key in parents:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(last, None)
    else:
        target[last] = value
    return cluster


@pytest.mark.parametrize(
    "path", [FIXTURES / "gke" / "cluster.json", FIXTURES.parent.parent / "mutguard" / "demo"]
)
def test_fixtures_are_v1_cluster_resources(path):
    # Every field name and enum value must exist in the GKE v1 API: parse with no leniency.
    files = [path] if path.is_file() else sorted(path.glob("*/cluster.json"))
    documents = [json.loads(p.read_text()) for p in files]
    gke_documents = [d for d in documents if gke.looks_like(d)]
    assert gke_documents
    for document in gke_documents:
        message = json_format.ParseDict(document, Cluster.pb()(), ignore_unknown_fields=False)
        # ...and are what the live collector's conversion prints for that resource.
        assert json_format.MessageToDict(message) == document


def _raw_models(annotation):
    """The parser's models inside an annotation such as `list[_NodePool] | None`."""
    if isinstance(annotation, type) and issubclass(annotation, gke._Raw):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _raw_models(arg)


def test_every_field_the_parser_reads_is_in_the_v1_api():
    checked, pending = set(), [(gke._GkeClusterDoc, Cluster.pb().DESCRIPTOR)]
    while pending:
        model, descriptor = pending.pop()
        checked.add(model)
        fields = {f.json_name: f for f in descriptor.fields}
        for info in model.model_fields.values():
            assert info.alias in fields, f"{descriptor.full_name} has no field {info.alias}"
            message = fields[info.alias].message_type
            for sub in _raw_models(info.annotation):
                assert message is not None, f"{descriptor.full_name}.{info.alias} is no message"
                if sub not in checked:
                    pending.append((sub, message))
    assert len(checked) > 20


def test_shape_detection():
    assert detect(gke_cluster()) is Provider.GKE
    assert not gke.looks_like(describe_cluster())
    aks_show = {
        "id": "/subscriptions/0000/resourcegroups/rg/providers/Microsoft.ContainerService/"
        "managedClusters/prod",
        "name": "prod",
        "location": "westeurope",
        "kubernetesVersion": "1.30.3",
        "type": "Microsoft.ContainerService/ManagedClusters",
    }
    assert not gke.looks_like(aks_show)
    minimal = {"name": "prod", "location": "us-central1", "currentMasterVersion": "1.33.1-gke.1"}
    assert gke.looks_like(minimal)


@pytest.mark.parametrize(
    ("public", "anonymous", "probe", "bindings_allowed", "extra", "expected"),
    [
        (True, "ENABLED", ANONYMOUS_ON, True, [ANONYMOUS_ADMIN], 0),
        (True, "ENABLED", ANONYMOUS_ON, True, [], 1),
        (True, "LIMITED", ANONYMOUS_OFF, True, [], 1),  # EKS: 2 (see the module docstring)
        (True, "LIMITED", ANONYMOUS_OFF, False, [], 2),
        (False, "LIMITED", ANONYMOUS_OFF, True, [], 2),  # EKS: 3
        (False, "LIMITED", ANONYMOUS_OFF, False, [], 3),
    ],
    ids=[
        "anonymous-cluster-admin",
        "anonymous-default-rbac",
        "public-no-anonymous",
        "public-no-anonymous-bindings-refused",
        "private",
        "private-bindings-refused",
    ],
)
def test_seed_examples_on_gke(public, anonymous, probe, bindings_allowed, extra, expected):
    cluster = gke_cluster(public=public, anonymous=anonymous, bindings_allowed=bindings_allowed)
    report = assess_gke(cluster, rbac=rbac_list(*extra), probe=probe)
    assert report.mut == expected
    assert "mut" not in report.mut_upper_bound
    internet = next(p for p in report.paths if p.from_ == "internet")
    assert internet.mut == expected


def test_any_google_account_is_the_authentication_step():
    report = assess_gke(gke_cluster(bindings_allowed=True), rbac=rbac_list(), probe=ANONYMOUS_OFF)
    steps = next(p for p in report.paths if p.from_ == "internet").steps
    assert steps[1] == (
        "authentication (0): any Google account authenticates as system:authenticated"
    )
    allowed = finding(
        report,
        "gke.rbac.insecure_bindings_allowed",
        "rbacBindingConfig.enableInsecureBindingSystemAuthenticated",
    )
    assert allowed.status is Status.FAIL and allowed.mut_gain == 1


def test_existing_binding_to_authenticated_counts_whatever_rbac_binding_config_says():
    # GKE refuses only new bindings; an existing one keeps working until it is deleted.
    binding = cluster_role_binding("all-google", "cluster-admin", ("Group", "system:authenticated"))
    report = assess_gke(gke_cluster(bindings_allowed=False), rbac=rbac_list(binding))
    assert report.mut == 0
    assert finding(report, "rbac.authenticated_admin").status is Status.FAIL


@pytest.mark.parametrize(
    ("cluster", "expected", "detail"),
    [
        (gke_cluster(), Status.FAIL, "no authorized networks"),
        (gke_cluster(authorized=["0.0.0.0/0"]), Status.FAIL, "0.0.0.0/0"),
        (gke_cluster(authorized=["8.0.0.0/7"]), Status.FAIL, "8.0.0.0/7"),
        (gke_cluster(authorized=["203.0.113.0/24"], google_cloud_access=True), Status.FAIL, "VM"),
        (gke_cluster(authorized=["203.0.113.0/24"], google_cloud_access=None), Status.FAIL, "VM"),
        (gke_cluster(authorized=["203.0.113.0/24"]), Status.PASS, "203.0.113.0/24"),
        (gke_cluster(public=False), Status.PASS, "no public IP endpoint"),
        (gke_cluster(authorized=["not-a-cidr"]), Status.UNKNOWN, "not-a-cidr"),
    ],
    ids=[
        "no-networks",
        "everyone",
        "wide",
        "google-cloud",
        "google-cloud-default",
        "narrow",
        "private",
        "invalid",
    ],
)
def test_endpoint_public_unrestricted(cluster, expected, detail):
    result = status("gke.endpoint.public_unrestricted", cluster)
    assert result.status is expected and detail in result.detail


def test_google_cloud_access_default_follows_private_nodes():
    cluster = gke_cluster(authorized=["203.0.113.0/24"], google_cloud_access=None)
    private_nodes = with_field(cluster, "privateClusterConfig.enablePrivateNodes", True)
    assert status("gke.endpoint.public_unrestricted", private_nodes).status is Status.PASS
    assert status("gke.nodes.private", private_nodes).status is Status.PASS
    assert status("gke.nodes.private", cluster).status is Status.FAIL


def test_ip_endpoints_disabled_leaves_only_the_dns_endpoint():
    cluster = with_field(gke_cluster(), "controlPlaneEndpointsConfig.ipEndpointsConfig", None)
    cluster = with_field(cluster, "controlPlaneEndpointsConfig.ipEndpointsConfig.enabled", False)
    assert status("gke.endpoint.private_only", cluster).status is Status.PASS
    assert status("gke.endpoint.private_only").status is Status.FAIL


def test_top_level_authorized_networks_of_older_clusters():
    cluster = with_field(
        gke_cluster(authorized=["203.0.113.0/24"]),
        "controlPlaneEndpointsConfig.ipEndpointsConfig.authorizedNetworksConfig",
        None,
    )
    assert status("gke.endpoint.public_unrestricted", cluster).status is Status.PASS


def test_authorized_networks_on_private_endpoint():
    assert status("gke.endpoint.authorized_networks_on_private").status is Status.FAIL
    cluster = gke_cluster(authorized=["10.0.0.0/8"])
    assert status("gke.endpoint.authorized_networks_on_private", cluster).status is Status.FAIL
    for place in (
        "masterAuthorizedNetworksConfig",
        "controlPlaneEndpointsConfig.ipEndpointsConfig.authorizedNetworksConfig",
    ):
        cluster = with_field(cluster, f"{place}.privateEndpointEnforcementEnabled", True)
    assert status("gke.endpoint.authorized_networks_on_private", cluster).status is Status.PASS


def dns(**settings):
    base = {"endpoint": "gke-abc-123.europe-west1-b.gke.goog", **settings}
    return with_field(
        gke_cluster(public=False), "controlPlaneEndpointsConfig.dnsEndpointConfig", base
    )


def test_dns_endpoint_with_kubernetes_credentials():
    iam_only = dns(allowExternalTraffic=True)
    tokens = dns(allowExternalTraffic=True, enableK8sTokensViaDns=True)
    closed = dns(allowExternalTraffic=False, enableK8sTokensViaDns=True)
    assert status("gke.endpoint.dns_kubernetes_credentials", iam_only).status is Status.PASS
    assert status("gke.endpoint.dns_kubernetes_credentials", closed).status is Status.PASS
    report = assess_gke(tokens, rbac=rbac_list())
    assert finding(report, "gke.endpoint.dns_kubernetes_credentials").status is Status.FAIL
    # A leaked Kubernetes token now needs no network foothold, only one bad binding.
    assert report.mut_credential == 2
    assert assess_gke(iam_only, rbac=rbac_list()).mut_credential == 3


@pytest.mark.parametrize(
    ("datapath", "calico", "expected"),
    [
        ("ADVANCED_DATAPATH", False, Status.PASS),
        (None, True, Status.PASS),
        ("LEGACY_DATAPATH", False, Status.FAIL),
        (None, False, Status.FAIL),
        ("SOME_NEW_DATAPATH", False, Status.UNKNOWN),
    ],
)
def test_network_policy_enforcement(datapath, calico, expected):
    cluster = with_field(gke_cluster(), "networkConfig.datapathProvider", datapath)
    cluster = with_field(
        cluster, "networkPolicy", {"provider": "CALICO", "enabled": True} if calico else {}
    )
    assert status("gke.network.policy_enforcement", cluster).status is expected


@pytest.mark.parametrize(
    ("mode", "probe", "expected"),
    [
        ("LIMITED", None, Status.PASS),
        ("ENABLED", None, Status.FAIL),
        (None, None, Status.FAIL),  # not reported: Kubernetes' default answers anonymous requests
        ("LIMITED", ANONYMOUS_ON, Status.FAIL),  # the probe wins
        ("ENABLED", ANONYMOUS_OFF, Status.PASS),
        ("SOMETHING_NEW", None, Status.UNKNOWN),
        (7, None, Status.UNKNOWN),  # a number the SDK did not know, kept as the SDK wrote it
    ],
)
def test_anonymous_auth(mode, probe, expected):
    cluster = with_field(gke_cluster(), "anonymousAuthenticationConfig.mode", mode)
    documents = {"probe": probe} if probe else {}
    result = status("gke.auth.anonymous", cluster, **documents)
    assert result.status is expected
    if expected is Status.UNKNOWN:
        assert str(mode) in result.detail


def test_unknown_anonymous_mode_bounds_mut_and_says_so():
    cluster = with_field(gke_cluster(), "anonymousAuthenticationConfig.mode", 7)
    report = assess_gke(cluster, rbac=rbac_list())
    assert "mut" in report.mut_upper_bound
    assert any("'7'" in line for line in report.mut_basis)


def test_basic_auth_password_is_an_admin_credential():
    cluster = with_field(gke_cluster(authorized=["203.0.113.0/24"]), "masterAuth.username", "admin")
    cluster["masterAuth"]["password"] = "hunter2-static-password"
    report = assess_gke(cluster, rbac=rbac_list())
    result = finding(report, "gke.auth.basic_auth")
    assert result.status is Status.FAIL and result.mut_gain == 1
    assert report.mut_credential == 2  # the leak, and a network foothold: no RBAC needed
    assert "hunter2" not in report.model_dump_json()
    assert status("gke.auth.basic_auth").status is Status.PASS


def test_client_certificate_is_user_client():
    issued = with_field(gke_cluster(), "masterAuth.clientCertificate", "LS0tLS1CRUdJTi==")
    binding = cluster_role_binding("client-admin", "cluster-admin", ("User", "client"))
    assert status("gke.auth.client_certificate").status is Status.PASS
    config = with_field(
        gke_cluster(), "masterAuth.clientCertificateConfig", {"issueClientCertificate": True}
    )
    assert status("gke.auth.client_certificate", config).status is Status.FAIL
    without = assess_gke(issued, rbac=rbac_list())
    assert finding(without, "gke.auth.client_certificate").mut_gain == 0  # no power of its own
    bound = assess_gke(issued, rbac=rbac_list(binding))
    assert bound.mut_credential == 1
    path = next(p for p in bound.paths if p.from_.startswith("credential:"))
    assert path.from_ == "credential:gke-client-certificate"


def test_google_groups_and_identity_service():
    assert status("gke.auth.google_groups").status is Status.FAIL
    groups = with_field(
        gke_cluster(),
        "authenticatorGroupsConfig",
        {"enabled": True, "securityGroup": "gke-security-groups@example.com"},
    )
    assert status("gke.auth.google_groups", groups).status is Status.PASS
    assert status("gke.auth.identity_service").status is Status.PASS
    oidc = with_field(gke_cluster(), "identityServiceConfig", {"enabled": True})
    assert status("gke.auth.identity_service", oidc).status is Status.UNKNOWN


def test_rbac_binding_config_not_reported_allows_bindings():
    cluster = gke_cluster(bindings_allowed=None)
    result = status(
        "gke.rbac.insecure_bindings_allowed",
        cluster,
        "rbacBindingConfig.enableInsecureBindingSystemUnauthenticated",
    )
    assert result.status is Status.FAIL and "not set" in result.detail


def test_legacy_abac_makes_every_service_account_admin():
    cluster = with_field(gke_cluster(public=False), "legacyAbac.enabled", True)
    report = assess_gke(cluster, rbac=rbac_list(), probe=ANONYMOUS_OFF)
    assert finding(report, "gke.rbac.legacy_abac").status is Status.FAIL
    assert report.mut_workload == 1  # the exploited pod's own token is enough
    assert report.mut_credential == 2  # any leaked token, from inside the network
    assert status("gke.rbac.legacy_abac").status is Status.PASS


def test_node_metadata_and_default_service_account():
    exposed = gke_cluster(metadata="GCE_METADATA", scopes=[CLOUD_PLATFORM])
    report = assess_gke(exposed, rbac=rbac_list())
    metadata = finding(report, "gke.nodes.metadata_server", pool_resource())
    account = finding(report, "gke.nodes.default_service_account", pool_resource())
    assert metadata.status is Status.FAIL and account.status is Status.FAIL
    assert report.mut_workload == 1  # the pod reads an Editor token from the metadata server
    assert metadata.mut_gain == 1 and account.mut_gain == 1
    assert metadata.mut_gain_from == ["workload"]
    limited = assess_gke(gke_cluster(metadata="GCE_METADATA"), rbac=rbac_list())
    assert "access scopes" in finding(limited, "gke.nodes.default_service_account").detail
    assert limited.mut_workload == 2  # the node's token needs one IAM mistake more
    hardened = assess_gke(gke_cluster(**HARDENED), rbac=rbac_list())
    assert finding(hardened, "gke.nodes.metadata_server").status is Status.PASS
    assert finding(hardened, "gke.nodes.default_service_account").status is Status.PASS


@pytest.mark.parametrize(
    ("mode", "autopilot", "expected"),
    [
        ("GKE_METADATA", False, Status.PASS),
        ("GCE_METADATA", False, Status.FAIL),
        (None, False, Status.FAIL),  # not set: the Compute Engine metadata server answers
        (None, True, Status.PASS),  # Autopilot always runs the GKE metadata server
        ("SOME_NEW_MODE", False, Status.UNKNOWN),
    ],
)
def test_metadata_modes(mode, autopilot, expected):
    cluster = gke_cluster(metadata=mode)
    if autopilot:
        cluster["autopilot"] = {"enabled": True}
    assert status("gke.nodes.metadata_server", cluster).status is expected


def test_known_workloads_reach_their_pools_metadata():
    exposed = gke_cluster(metadata="GCE_METADATA", scopes=[CLOUD_PLATFORM])
    report = assess_gke(exposed, rbac=rbac_list(), workloads=kube_list(pod("web-1", node=NODE)))
    radius = {b.workload: b for b in report.blast_radius}
    assert radius["shop/web-1"].mut == 1
    assert any("metadata server" in step for step in radius["shop/web-1"].steps)


def test_node_pool_of_a_node_is_known_only_when_certain():
    cluster = gke_cluster()
    second = copy.deepcopy(cluster["nodePools"][0])
    second["name"] = "batch"
    cluster["nodePools"].append(second)
    parsed = gke.parse(gke_source(cluster), OBSERVED_AT)
    assert parsed.pool_of_node(NODE).name == "default-pool"
    assert parsed.pool_of_node("gke-prod-batch-1a2b3c4d-9xz1").name == "batch"
    assert parsed.pool_of_node("some-node") is None
    assert parsed.pool_of_node(None) is None


def test_workload_identity_shielded_binauthz_posture():
    assert status("gke.workloads.workload_identity").status is Status.PASS
    no_pool = with_field(gke_cluster(), "workloadIdentityConfig", None)
    assert status("gke.workloads.workload_identity", no_pool).status is Status.FAIL
    assert status("gke.nodes.shielded").status is Status.PASS
    assert status("gke.nodes.shielded", with_field(gke_cluster(), "shieldedNodes", {})).status is (
        Status.FAIL
    )
    unreported = with_field(gke_cluster(), "shieldedNodes", None)
    assert status("gke.nodes.shielded", unreported).status is Status.UNKNOWN
    for mode, expected in (
        ("PROJECT_SINGLETON_POLICY_ENFORCE", Status.PASS),
        ("DISABLED", Status.FAIL),
        ("POLICY_BINDINGS_OF_2027", Status.UNKNOWN),
    ):
        cluster = with_field(gke_cluster(), "binaryAuthorization.evaluationMode", mode)
        assert status("gke.workloads.binary_authorization", cluster).status is expected
    legacy = with_field(gke_cluster(), "binaryAuthorization", {"enabled": True})
    assert status("gke.workloads.binary_authorization", legacy).status is Status.PASS
    for mode, expected in (
        ("BASIC", Status.PASS),
        ("DISABLED", Status.FAIL),
        (None, Status.UNKNOWN),
        ("NEW_TIER", Status.UNKNOWN),
    ):
        cluster = with_field(gke_cluster(), "securityPostureConfig.mode", mode)
        assert status("gke.workloads.security_posture", cluster).status is expected


@pytest.mark.parametrize(
    ("encryption", "expected"),
    [
        (
            {"state": "ENCRYPTED", "keyName": "projects/p/locations/l/keyRings/r/cryptoKeys/k"},
            Status.PASS,
        ),
        ({"state": "DECRYPTED"}, Status.FAIL),
        (None, Status.FAIL),
        ({"state": "ENCRYPTED"}, Status.FAIL),
        ({"state": "HALF_ENCRYPTED"}, Status.UNKNOWN),
    ],
)
def test_secrets_kms_encryption(encryption, expected):
    cluster = with_field(gke_cluster(), "databaseEncryption", encryption)
    assert status("gke.secrets.kms_encryption", cluster).status is expected


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("REGULAR", Status.PASS),
        ("UNSPECIFIED", Status.FAIL),
        (None, Status.FAIL),
        ("NIGHTLY", Status.UNKNOWN),
    ],
)
def test_release_channel(channel, expected):
    cluster = with_field(gke_cluster(), "releaseChannel.channel", channel)
    assert status("gke.version.release_channel", cluster).status is expected


def test_node_version_skew():
    assert status("gke.version.node_skew").status is Status.PASS
    behind = gke_cluster()
    behind["nodePools"][0]["version"] = "1.31.6-gke.1020000"
    result = status("gke.version.node_skew", behind)
    assert result.status is Status.FAIL and "default-pool (1.31.6-gke.1020000)" in result.detail
    unreadable = gke_cluster()
    del unreadable["nodePools"][0]["version"]
    assert status("gke.version.node_skew", unreadable).status is Status.UNKNOWN
    odd_master = gke_cluster(version="latest")
    assert status("gke.version.node_skew", odd_master).status is Status.UNKNOWN


def test_logging():
    assert status("gke.logging.system_components").status is Status.PASS
    assert status("gke.logging.control_plane").status is Status.FAIL
    control_plane = with_field(
        gke_cluster(),
        "loggingConfig.componentConfig.enableComponents",
        ["SYSTEM_COMPONENTS", "APISERVER"],
    )
    assert status("gke.logging.control_plane", control_plane).status is Status.PASS
    nothing = with_field(gke_cluster(), "loggingConfig.componentConfig", {})
    assert status("gke.logging.system_components", nothing).status is Status.FAIL
    legacy = with_field(gke_cluster(), "loggingConfig", None)
    assert status("gke.logging.system_components", legacy).status is Status.PASS
    off = with_field(legacy, "loggingService", "none")
    assert status("gke.logging.system_components", off).status is Status.FAIL
    unreported = with_field(legacy, "loggingService", None)
    assert status("gke.logging.system_components", unreported).status is Status.UNKNOWN


def test_a_bare_cluster_resource_scans():
    # Missing blocks (an old API version, a trimmed document) read as not reported, never crash.
    bare = {"name": "old", "location": "us-central1-a", "currentMasterVersion": "1.27.3-gke.100"}
    report = assess_gke(bare)
    assert report.errors == [] and report.mut is not None
    assert report.account == "" and report.location == "us-central1-a"
    assert finding(report, "gke.nodes.shielded").status is Status.UNKNOWN
    assert [f for f in report.findings if f.status is Status.ERROR] == []


def test_newer_fields_are_ignored():
    cluster = gke_cluster()
    cluster["someFeatureOf2027"] = {"enabled": True}
    cluster["nodePools"][0]["config"]["newNodeThing"] = ["x"]
    assert assess_gke(cluster).errors == []


def test_malformed_field_names_the_cluster_and_the_field():
    broken = with_field(gke_cluster("broken"), "legacyAbac.enabled", "yes")
    report = build_report([gke_source(broken), gke_source(gke_cluster("fine"))], OBSERVED_AT)
    reports = {c.name: c for c in report.clusters}
    assert reports["broken"].mut is None
    assert "broken" in reports["broken"].errors[0]
    assert "legacyAbac.enabled" in reports["broken"].errors[0]
    assert reports["fine"].mut is not None


def test_secrets_in_a_snapshot_are_never_read():
    cluster = gke_cluster()
    cluster["masterAuth"].update(password="hunter2-static", clientKey="LS0tUFJJVkFURSBLRVk=")
    assert "hunter2" not in assess_gke(cluster).model_dump_json()
    assert "UFJJVkFURSBLRVk" not in assess_gke(cluster).model_dump_json()


def test_demo_has_a_gke_cluster(capsys):
    assert main(["demo", "--format", "json"]) == 0
    clusters = {c["name"]: c for c in json.loads(capsys.readouterr().out)["clusters"]}
    cluster = clusters["data-platform"]
    assert cluster["provider"] == "gke" and cluster["account"] == "data-platform-prod-7731"
    # Any Compute Engine VM reaches the endpoint, any Google account authenticates, GKE
    # accepts bindings to system:authenticated: one bad binding away. A pod reads the nodes'
    # Editor token from the metadata server.
    assert (cluster["mut"], cluster["mut_workload"], cluster["mut_credential"]) == (1, 1, 2)
    gains = {f["check_id"]: f["mut_gain"] for f in cluster["findings"] if f.get("mut_gain")}
    assert gains == {
        "gke.endpoint.public_unrestricted": 1,
        "gke.rbac.insecure_bindings_allowed": 1,
        "gke.nodes.metadata_server": 1,
        "gke.nodes.default_service_account": 1,
    }
