"""AKS: `az aks show` parsing, every AKS check (PASS, FAIL, UNKNOWN), MUT seeds and the demo."""

import copy
import json
import subprocess
import sys
from typing import Any

import pytest

from mutguard.cli import EXIT_OK, main
from mutguard.models import Status
from mutguard.providers import detect
from mutguard.providers.aks import AksCluster, looks_like, parse
from mutguard.scan import build_report, evaluate
from mutguard.sources import ClusterSource, Provider

from builders import FIXTURES, OBSERVED_AT, cluster_role_binding, describe_cluster, rbac_list

AZ_SHOW = json.loads((FIXTURES / "aks" / "az-aks-show.json").read_text())
ARM_RESOURCE = json.loads((FIXTURES / "aks" / "managed-cluster.arm.json").read_text())
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
ANONYMOUS_ON = {"anonymous_version": True, "anonymous_api": True}
ANONYMOUS_OFF = {"anonymous_version": False, "anonymous_api": False}
ANONYMOUS_ADMIN = cluster_role_binding(
    "anonymous-admin", "cluster-admin", ("Group", "system:unauthenticated")
)
ADMINS_GROUP = "6b1f3c2a-9d4e-4f5a-8b7c-0e1d2c3b4a59"
DELETE = object()
GROUP_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/a-test-wf-rg"
WORKSPACE = f"{GROUP_ID}/providers/Microsoft.OperationalInsights/workspaces/a-test-wf-logs"


def az_aks_show(changes: dict[str, Any] | None = None) -> dict[str, Any]:
    """`az aks show -o json` of a hardened cluster; `changes` maps dotted paths to new values
    (DELETE removes the key), e.g. {"apiServerAccessProfile.enablePrivateCluster": False}."""
    cluster = copy.deepcopy(AZ_SHOW)
    cluster.update(
        {
            "kubernetesVersion": "1.34.2",
            "currentKubernetesVersion": "1.34.2",
            "apiServerAccessProfile": {
                "authorizedIpRanges": None,
                "disableRunCommand": None,
                "enablePrivateCluster": True,
                "enablePrivateClusterPublicFqdn": False,
                "enableVnetIntegration": None,
                "privateDnsZone": "system",
                "subnetId": None,
            },
            "privateFqdn": "a-test-wf-aks-3d9q3p7f.privatelink.westeurope.azmk8s.io",
            "addonProfiles": {"azurepolicy": {"config": None, "enabled": True, "identity": None}},
            "autoUpgradeProfile": {
                "nodeOsUpgradeChannel": "SecurityPatch",
                "upgradeChannel": "patch",
            },
            "oidcIssuerProfile": {
                "enabled": True,
                "issuerUrl": "https://westeurope.oic.prod-aks.azure.com/t/i/",
            },
            "securityProfile": {
                "azureKeyVaultKms": {
                    "enabled": True,
                    "keyId": "https://kv-aks.vault.azure.net/keys/etcd/0123456789abcdef",
                    "keyVaultNetworkAccess": "Private",
                    "keyVaultResourceId": f"{GROUP_ID}/providers/Microsoft.KeyVault/vaults/kv-aks",
                },
                "defender": {
                    "logAnalyticsWorkspaceResourceId": WORKSPACE,
                    "securityMonitoring": {"enabled": True},
                },
                "imageCleaner": {"enabled": True, "intervalHours": 48},
                "workloadIdentity": {"enabled": True},
            },
        }
    )
    cluster["networkProfile"]["networkPolicy"] = "azure"
    cluster["networkProfile"]["networkPlugin"] = "azure"
    cluster["agentPoolProfiles"][0]["securityProfile"]["sshAccess"] = "Disabled"
    for path, value in (changes or {}).items():
        *parents, leaf = path.split(".")
        node = cluster
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is DELETE:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return cluster


PUBLIC = {"apiServerAccessProfile": None}


def source(cluster: dict, **documents: Any) -> ClusterSource:
    docs = {"cluster.json": cluster}
    docs.update({f"{key.replace('_', '-')}.json": value for key, value in documents.items()})
    return ClusterSource(Provider.AKS, cluster.get("name", "?"), documents=docs)


def assess(cluster: dict, **documents: Any):
    return evaluate(source(cluster, **documents), OBSERVED_AT)


def findings(report, check_id):
    return [f for f in report.findings if f.check_id == check_id]


def status(check_id, changes=None, **documents):
    (result,) = findings(assess(az_aks_show(changes), **documents), check_id)
    return result


# --- parsing -------------------------------------------------------------------------------


def test_looks_like_az_and_arm_shapes_only():
    assert looks_like(AZ_SHOW) and looks_like(ARM_RESOURCE)
    assert detect(AZ_SHOW) is Provider.AKS
    assert not looks_like(describe_cluster())
    gke = {
        "name": "prod",
        "id": "1b4c7d3e9f2a4b6c8d0e1f2a3b4c5d6e",
        "selfLink": "https://container.googleapis.com/v1/projects/p/locations/europe-west1/clusters/prod",
    }
    assert not looks_like(gke)
    assert not looks_like({"id": 7}) and not looks_like([])


def _parsed(cluster: dict) -> dict:
    return parse(source(cluster), OBSERVED_AT).model_dump(exclude={"origin"})


def test_arm_resource_and_az_output_parse_to_the_same_cluster():
    parsed = _parsed(AZ_SHOW)
    assert parsed == _parsed(ARM_RESOURCE)
    cluster = parse(source(AZ_SHOW), OBSERVED_AT)
    assert isinstance(cluster, AksCluster)
    assert (cluster.account, cluster.resource_group, cluster.location) == (
        SUBSCRIPTION,
        "a-test-wf-rg",
        "westeurope",
    )
    assert (
        cluster.version == "1.27.7"
        and cluster.endpoint.public
        and not cluster.endpoint.public_cidrs
    )
    assert (
        cluster.local_accounts_disabled and cluster.azure_rbac and cluster.network_policy == "none"
    )
    assert [(p.pool, p.ssh_access) for p in cluster.node_pools_ssh] == [("agentpool", "LocalUser")]


def test_missing_fields_from_another_api_version_do_not_crash():
    minimal = {"id": AZ_SHOW["id"], "name": "bare", "location": "westeurope"}
    report = assess(minimal)
    assert report.errors == [] and report.mut is not None
    assert not [f for f in report.findings if f.status is Status.ERROR]
    assert findings(report, "aks.rbac.enabled")[0].status is Status.UNKNOWN
    assert findings(report, "aks.endpoint.public_unrestricted")[0].status is Status.FAIL
    assert findings(report, "aks.lifecycle.node_os_upgrade")[0].status is Status.UNKNOWN


def test_unknown_new_fields_are_ignored():
    cluster = az_aks_show(
        {"futureProfile": {"enabled": True}, "securityProfile.newGuard": {"x": 1}}
    )
    assert not [f for f in assess(cluster).findings if f.status is Status.ERROR]


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"enableRbac": "yes"}, "enableRbac"),
        (
            {"apiServerAccessProfile.enablePrivateCluster": "true"},
            "apiServerAccessProfile.enablePrivateCluster",
        ),
        ({"apiServerAccessProfile.authorizedIpRanges": "203.0.113.0/24"}, "authorizedIpRanges"),
        (
            {"id": "/subscriptions/s1/providers/Microsoft.ContainerService/managedClusters/x"},
            "not a managedCluster resource id",
        ),
    ],
)
def test_a_malformed_field_is_a_cluster_error_naming_it(changes, named):
    bad = az_aks_show(changes)
    good = az_aks_show({"name": "good"})
    report = build_report([source(bad), source(good)], OBSERVED_AT)
    broken, fine = report.clusters
    assert broken.mut is None and named in broken.errors[0]
    assert fine.mut == 3 and fine.errors == []


# --- MUT --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "probe", "extra", "expected"),
    [
        (PUBLIC, ANONYMOUS_ON, [ANONYMOUS_ADMIN], 0),
        (PUBLIC, ANONYMOUS_ON, [], 1),
        (PUBLIC, ANONYMOUS_OFF, [], 2),
        ({}, ANONYMOUS_OFF, [], 3),
    ],
    ids=["anonymous-cluster-admin", "anonymous-default-rbac", "public-no-anonymous", "private"],
)
def test_seed_examples(changes, probe, extra, expected):
    report = assess(az_aks_show(changes), rbac=rbac_list(*extra), probe=probe)
    assert report.mut == expected
    assert "mut" not in report.mut_upper_bound
    internet = next(p for p in report.paths if p.from_ == "internet")
    assert internet.mut == expected and len(internet.steps) == 3
    # A leaked credential: the leak, then the same barriers short of authentication.
    assert report.mut_credential == {0: 1, 1: 2, 2: 2, 3: 3}[expected]


def test_local_accounts_are_an_admin_credential():
    local = {"disableLocalAccounts": False}
    public = assess(az_aks_show({**PUBLIC, **local}), rbac=rbac_list(), probe=ANONYMOUS_OFF)
    assert (public.mut, public.mut_credential) == (2, 1)
    path = next(p for p in public.paths if p.from_.startswith("credential:"))
    assert "cluster-admin kubeconfig" in path.from_
    fix = findings(public, "aks.auth.local_accounts")[0]
    assert fix.status is Status.FAIL and fix.mut_gain == 1 and fix.mut_gain_from == ["credential"]
    private = assess(az_aks_show(local), rbac=rbac_list(), probe=ANONYMOUS_OFF)
    assert private.mut_credential == 2  # the leak, then a way into the virtual network
    assert status("aks.auth.local_accounts", {"disableLocalAccounts": DELETE}).status is Status.FAIL
    assert status("aks.auth.local_accounts").status is Status.PASS


def test_rbac_disabled_makes_every_authenticated_identity_admin():
    report = assess(az_aks_show({**PUBLIC, "enableRbac": False}), probe=ANONYMOUS_OFF)
    rbac = findings(report, "aks.rbac.enabled")[0]
    assert rbac.status is Status.FAIL and rbac.mut_gain == 1
    assert (report.mut, report.mut_workload) == (1, 1)  # a credential, or one exploited pod
    assert status("aks.rbac.enabled").status is Status.PASS
    unread = status("aks.rbac.enabled", {"enableRbac": DELETE})
    assert unread.status is Status.UNKNOWN


def test_entra_admin_groups_and_azure_rbac():
    groups = {"aadProfile.adminGroupObjectIDs": [ADMINS_GROUP]}
    report = assess(az_aks_show({**PUBLIC, **groups}), rbac=rbac_list(), probe=ANONYMOUS_OFF)
    admins = findings(report, "aks.access.standing_admins")
    assert [(f.status, f.resource) for f in admins] == [
        (Status.FAIL, f"entra-group:{ADMINS_GROUP}"),
        (Status.UNKNOWN, report.arn_or_id),
    ]
    assert report.mut_credential == 1 and "mut_credential" in report.mut_upper_bound
    assert any("Azure role assignments not read" in line for line in report.mut_basis)
    without_azure_rbac = {"aadProfile.enableAzureRbac": False}
    assert status("aks.access.standing_admins", without_azure_rbac).status is Status.PASS
    assert status("aks.access.azure_rbac", without_azure_rbac).status is Status.FAIL
    assert status("aks.access.azure_rbac").status is Status.PASS
    no_entra = assess(az_aks_show({"aadProfile": None, "disableLocalAccounts": False}))
    assert not findings(no_entra, "aks.access.standing_admins")
    assert not findings(no_entra, "aks.access.azure_rbac")


# --- each check ---------------------------------------------------------------------------


def allowed(*ranges: str) -> dict[str, Any]:
    return {
        "apiServerAccessProfile.enablePrivateCluster": False,
        "apiServerAccessProfile.authorizedIpRanges": list(ranges),
    }


@pytest.mark.parametrize(
    ("changes", "expected", "detail"),
    [
        (PUBLIC, Status.FAIL, "no authorized IP ranges"),
        (allowed("0.0.0.0/0"), Status.FAIL, "0.0.0.0/0"),
        (allowed("203.0.113.0/24", "8.0.0.0/7"), Status.FAIL, "8.0.0.0/7"),
        (allowed("203.0.113.0/24"), Status.PASS, "203.0.113.0/24"),
        (allowed("office"), Status.UNKNOWN, "office"),
        ({}, Status.PASS, "private cluster"),
    ],
)
def test_endpoint_public_unrestricted(changes, expected, detail):
    result = status("aks.endpoint.public_unrestricted", changes)
    assert result.status is expected and detail in result.detail


def test_endpoint_private():
    private = status("aks.endpoint.private")
    assert private.status is Status.PASS and "private DNS zone system" in private.detail
    public_name = status(
        "aks.endpoint.private", {"apiServerAccessProfile.enablePrivateClusterPublicFqdn": True}
    )
    assert "resolves in public DNS" in public_name.detail
    result = status(
        "aks.endpoint.private",
        {**PUBLIC, "apiServerAccessProfile": {"enableVnetIntegration": True}},
    )
    assert result.status is Status.FAIL and "VNet Integration" in result.detail


@pytest.mark.parametrize(
    ("version", "probe", "expected"),
    [
        ("1.30.4", None, Status.PASS),  # attested --anonymous-auth=false
        ("1.34.2", None, Status.UNKNOWN),  # not documented: assumed, and MUT is a bound
        ("1.34.2", ANONYMOUS_OFF, Status.PASS),
        ("1.30.4", ANONYMOUS_ON, Status.FAIL),  # the probe wins
    ],
)
def test_anonymous_auth(version, probe, expected):
    documents = {"probe": probe} if probe else {}
    changes = {"currentKubernetesVersion": version, "kubernetesVersion": version}
    report = assess(az_aks_show(changes), rbac=rbac_list(), **documents)
    assert findings(report, "aks.auth.anonymous")[0].status is expected
    assert ("mut" in report.mut_upper_bound) is (expected is Status.UNKNOWN)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Status.PASS),
        ({"aadProfile.managed": False, "aadProfile.serverAppId": "legacy-app"}, Status.FAIL),
        ({"aadProfile": None, "disableLocalAccounts": False}, Status.FAIL),
    ],
)
def test_entra_id(changes, expected):
    assert status("aks.auth.entra_id", changes).status is expected


def test_workload_identity():
    assert status("aks.identity.workload_identity").status is Status.PASS
    result = status(
        "aks.identity.workload_identity",
        {"oidcIssuerProfile.enabled": False, "securityProfile.workloadIdentity": None},
    )
    assert result.status is Status.FAIL and "oidcIssuerProfile" in result.detail


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("azure", Status.PASS),
        ("cilium", Status.PASS),
        ("none", Status.FAIL),
        (None, Status.FAIL),
        ("somethingNew", Status.UNKNOWN),
    ],
)
def test_network_policy(policy, expected):
    result = status("aks.network.policy", {"networkProfile.networkPolicy": policy})
    assert result.status is expected
    if expected is Status.UNKNOWN:
        assert "somethingNew" in result.detail


SSH_KEY = {
    "linuxProfile": {"adminUsername": "azureuser", "ssh": {"publicKeys": [{"keyData": "k"}]}}
}
ENTRA_SSH_POOL = {"name": "np", "osType": "Linux", "securityProfile": {"sshAccess": "EntraId"}}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Status.PASS),  # no SSH key at all
        (SSH_KEY, Status.PASS),  # a key, but SSH disabled on the pool
        ({**SSH_KEY, "agentPoolProfiles": AZ_SHOW["agentPoolProfiles"]}, Status.FAIL),
        ({**SSH_KEY, "agentPoolProfiles": DELETE}, Status.FAIL),  # LocalUser is the default
        ({**SSH_KEY, "agentPoolProfiles": [ENTRA_SSH_POOL]}, Status.UNKNOWN),
    ],
)
def test_node_ssh(changes, expected):
    assert status("aks.nodes.ssh", changes).status is expected


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, Status.PASS),
        (
            {
                "identity": None,
                "servicePrincipalProfile": {"clientId": "8c4a2b1e-secret-backed-app"},
            },
            Status.FAIL,
        ),
        ({"identity.type": "SomethingNew"}, Status.UNKNOWN),
        ({"identity": DELETE, "servicePrincipalProfile": DELETE}, Status.UNKNOWN),
    ],
)
def test_managed_identity(changes, expected):
    assert status("aks.identity.managed", changes).status is expected


@pytest.mark.parametrize(
    ("check_id", "disabled"),
    [
        ("aks.secrets.kms", {"securityProfile.azureKeyVaultKms": None}),
        ("aks.logging.defender", {"securityProfile.defender.securityMonitoring.enabled": False}),
        ("aks.nodes.image_cleaner", {"securityProfile.imageCleaner": None}),
        ("aks.admission.azure_policy", {"addonProfiles.azurepolicy.enabled": False}),
        ("aks.admission.azure_policy", {"addonProfiles": None}),
    ],
)
def test_security_features(check_id, disabled):
    assert status(check_id).status is Status.PASS
    assert status(check_id, disabled).status is Status.FAIL


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("patch", Status.PASS),
        ("stable", Status.PASS),
        ("node-image", Status.FAIL),
        (None, Status.FAIL),
        ("nightly", Status.UNKNOWN),
    ],
)
def test_auto_upgrade(channel, expected):
    result = status("aks.lifecycle.auto_upgrade", {"autoUpgradeProfile.upgradeChannel": channel})
    assert result.status is expected
    if expected is Status.UNKNOWN:  # a value the API added later is named, never guessed
        assert result.detail == "unrecognised autoUpgradeProfile.upgradeChannel 'nightly'"


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ("SecurityPatch", Status.PASS),
        ("NodeImage", Status.PASS),
        ("None", Status.FAIL),
        ("Unmanaged", Status.FAIL),
        (None, Status.UNKNOWN),
        ("Hourly", Status.UNKNOWN),
    ],
)
def test_node_os_upgrade(channel, expected):
    changes = {"autoUpgradeProfile.nodeOsUpgradeChannel": channel}
    assert status("aks.lifecycle.node_os_upgrade", changes).status is expected


@pytest.mark.parametrize(
    ("version", "plan", "expected", "detail"),
    [
        ("1.34.2", "KubernetesOfficial", Status.PASS, "2026-11-30"),
        ("1.33.5", "KubernetesOfficial", Status.FAIL, "ended on 2026-06-30"),
        ("1.33.5", "AKSLongTermSupport", Status.PASS, "long-term support until 2027-06-30"),
        # Older than the calendar's oldest row (1.27, end of life 2024-07-31): ended before it.
        ("1.26.6", "KubernetesOfficial", Status.FAIL, "older than 1.27, whose support ended"),
        ("1.37.1", "KubernetesOfficial", Status.UNKNOWN, "support dates for 1.37 are not known"),
        ("latest", None, Status.UNKNOWN, "not a Kubernetes version"),
    ],
)
def test_version_supported(version, plan, expected, detail):
    changes = {
        "currentKubernetesVersion": version,
        "kubernetesVersion": version,
        "supportPlan": plan,
    }
    result = status("aks.version.supported", changes)
    assert result.status is expected and detail in result.detail


def test_hardened_cluster_grades():
    report = assess(az_aks_show(), rbac=rbac_list(), probe=ANONYMOUS_OFF)
    aks = {f.check_id: f.status for f in report.findings if f.check_id.startswith("aks.")}
    # Azure RBAC role assignments are not read: whether anyone holds standing admin stays open.
    assert aks.pop("aks.access.standing_admins") is Status.UNKNOWN
    assert set(aks.values()) == {Status.PASS}
    assert (report.maturity.network.value, report.maturity.authentication.value) == ("run", "run")
    assert (report.mut, report.mut_workload, report.mut_credential) == (3, 2, 3)


# --- snapshots, CLI and demo --------------------------------------------------------------


def test_cli_scans_an_az_aks_show_snapshot(capsys, tmp_path):
    (tmp_path / "cluster.json").write_text(json.dumps(AZ_SHOW))
    (tmp_path / "probe.json").write_text(json.dumps(ANONYMOUS_OFF))
    code = main(["scan", "--snapshot", str(tmp_path), "--format", "json"])
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    assert code == EXIT_OK
    assert (cluster["provider"], cluster["account"], cluster["name"]) == (
        "aks",
        SUBSCRIPTION,
        "a-test-wf-aks",
    )
    assert (cluster["mut"], cluster["mut_credential"]) == (2, 2)


def test_demo_includes_an_aks_cluster():
    done = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", "demo", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    clusters = {c["name"]: c for c in json.loads(done.stdout)["clusters"]}
    orders = clusters["orders-aks"]
    assert orders["provider"] == "aks" and orders["errors"] == []
    assert (orders["mut"], orders["mut_workload"], orders["mut_credential"]) == (2, 2, 1)
    gains = {f["check_id"]: f["mut_gain"] for f in orders["findings"] if f.get("mut_gain")}
    assert gains == {"aks.endpoint.public_unrestricted": 1, "aks.auth.local_accounts": 1}
