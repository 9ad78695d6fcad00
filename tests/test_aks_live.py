"""Live AKS collection: the real ContainerServiceClient and SubscriptionClient against a local
HTTPS server speaking the ARM wire format (tests/servers/aks.py): paging, ARM errors, throttling,
bearer tokens, read-only calls, and a live scan equal to its snapshot scanned offline."""

import copy
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken

from mutguard.cli import build_parser
from mutguard.models import Status
from mutguard.providers import PROVIDERS, snapshot
from mutguard.providers.aks_live import AksCollector, AzureOptions
from mutguard.scan import build_report
from mutguard.sources import CLUSTER_DOC, ScanError

from builders import FIXTURES, OBSERVED_AT
from servers.aks import ArmServer
from servers.tls import TestCa

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.mutguard-test-token"
SUB_A = "00000000-0000-0000-0000-000000000001"
SUB_B = "9b3c1d2e-4f5a-4b6c-8d7e-0f1a2b3c4d5e"
SUB_OFF = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
ARM_RESOURCE = json.loads((FIXTURES / "aks" / "managed-cluster.arm.json").read_text())
AZ_SHOW = json.loads((FIXTURES / "aks" / "az-aks-show.json").read_text())
CLUSTERS_PATH = r"/subscriptions/{}/providers/Microsoft\.ContainerService/managedClusters"
DENIED = (
    "The client 'a1b2c3d4-0000-0000-0000-000000000000' with object id "
    "'a1b2c3d4-0000-0000-0000-000000000000' does not have authorization to perform action "
    "'Microsoft.ContainerService/managedClusters/read' over scope '/subscriptions/{}' or the "
    "scope is invalid. If access was recently granted, please refresh your credentials."
)


class StaticToken:
    """A TokenCredential: what DefaultAzureCredential hands the SDK, minus the sign-in."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture(scope="session")
def arm_ca(test_ca: TestCa, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session CA's PEM as a file: what azure-core's connection_verify takes."""
    path = tmp_path_factory.mktemp("arm-tls") / "ca.pem"
    path.write_bytes(test_ca.ca_pem)
    return path


@pytest.fixture
def arm(test_ca: TestCa, monkeypatch: pytest.MonkeyPatch):
    # A proxy configured on the machine must never see requests meant for 127.0.0.1.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with ArmServer(test_ca, TOKEN) as server:
        yield server


def cluster_resource(subscription: str, name: str, **properties: Any) -> dict[str, Any]:
    """The fixture managedCluster renamed and moved to another subscription."""
    resource = copy.deepcopy(ARM_RESOURCE)
    resource["id"] = resource["id"].replace(SUB_A, subscription).replace("a-test-wf-aks", name)
    resource["name"] = name
    resource["properties"].update(properties)
    return resource


def collect(arm: ArmServer, ca_file: Path, credential: Any = None, **options: Any) -> list:
    options.setdefault("in_cluster", False)  # tests/test_aks_in_cluster.py reads inside
    settings = AzureOptions(
        credential=credential or StaticToken(),
        base_url=arm.url,
        connection_verify=str(ca_file),
        **options,
    )
    return list(AksCollector(settings).collect())


@pytest.fixture
def fleet(arm: ArmServer) -> ArmServer:
    """Two readable subscriptions (A: three clusters, two pages; B: one) and a disabled one."""
    arm.add_subscription(SUB_A)
    arm.add_subscription(SUB_B)
    arm.add_subscription(SUB_OFF, state="Disabled")
    arm.add_cluster(SUB_A, ARM_RESOURCE)
    arm.add_cluster(SUB_A, cluster_resource(SUB_A, "web", enableRBAC=False))
    arm.add_cluster(SUB_A, cluster_resource(SUB_A, "batch", disableLocalAccounts=False))
    arm.add_cluster(SUB_B, cluster_resource(SUB_B, "payments"))
    return arm


def by_name(items: list) -> dict[str, Any]:
    return {item.name: item for item in items if not isinstance(item, ScanError)}


def test_every_cluster_of_every_listed_subscription_with_paging(fleet, arm_ca):
    items = collect(fleet, arm_ca)
    assert [i for i in items if isinstance(i, ScanError)] == []
    clusters = by_name(items)
    assert {(c.name, c.account) for c in clusters.values()} == {
        ("a-test-wf-aks", SUB_A),
        ("web", SUB_A),
        ("batch", SUB_A),
        ("payments", SUB_B),
    }
    # Three subscriptions and three of A's clusters make two pages each, via nextLink.
    assert fleet.requests_seen("GET", "/subscriptions") == 2
    assert fleet.requests_seen("GET", CLUSTERS_PATH.format(SUB_A)) == 2
    assert fleet.requests_seen("GET", CLUSTERS_PATH.format(SUB_OFF)) == 0
    report = build_report(items, OBSERVED_AT)
    web = next(c for c in report.clusters if c.name == "web")
    assert web.mut_workload == 1  # RBAC disabled: one exploited pod is admin
    batch = next(c for c in report.clusters if c.name == "batch")
    assert batch.mut_credential == 1  # local accounts over a public API server


def test_only_the_named_clusters_and_locations_are_kept(fleet, arm_ca):
    named = collect(fleet, arm_ca, clusters=("web", "payments"))
    assert set(by_name(named)) == {"web", "payments"}
    region = ARM_RESOURCE["location"]  # as ARM prints it; `az` users also type "West Europe"
    assert set(by_name(collect(fleet, arm_ca, locations=(region.upper(),)))) == {
        "a-test-wf-aks",
        "web",
        "batch",
        "payments",
    }
    assert by_name(collect(fleet, arm_ca, locations=("antarcticanorth",))) == {}


def test_a_denied_subscription_is_named_and_the_others_are_scanned(fleet, arm_ca):
    fleet.add_fault(CLUSTERS_PATH.format(SUB_B), 403, "AuthorizationFailed", DENIED.format(SUB_B))
    items = collect(fleet, arm_ca)
    errors = [i for i in items if isinstance(i, ScanError)]
    assert [e.scope for e in errors] == [f"aks:{SUB_B}"]
    assert errors[0].message.startswith(
        "Microsoft.ContainerService/managedClusters/read: AuthorizationFailed: The client"
    )
    assert set(by_name(items)) == {"a-test-wf-aks", "web", "batch"}


def test_throttling_waits_for_retry_after_then_succeeds(fleet, arm_ca):
    fleet.add_fault(
        CLUSTERS_PATH.format(SUB_B),
        429,
        "TooManyRequests",
        "The request is being throttled as the limit has been reached for operation "
        "'ListManagedClusters'. Please try again after '1' seconds.",
        times=1,
        headers={"Retry-After": "1"},
    )
    items = collect(fleet, arm_ca, subscriptions=(SUB_B,))
    assert [i.name for i in items] == ["payments"]
    assert fleet.requests_seen("GET", CLUSTERS_PATH.format(SUB_B)) == 2


def test_the_bearer_token_is_checked(fleet, arm_ca):
    (error,) = collect(fleet, arm_ca, credential=StaticToken("expired"), max_attempts=1)
    assert error.scope == "aks:subscriptions"
    assert "Microsoft.Resources/subscriptions/read" in error.message
    assert "AuthenticationFailed" in error.message and "expired" not in error.message


def test_explicit_subscriptions_are_not_listed(fleet, arm_ca):
    items = collect(fleet, arm_ca, subscriptions=(SUB_B,))
    assert [i.name for i in items] == ["payments"]
    assert fleet.requests_seen("GET", "/subscriptions") == 0


def test_only_reads_are_sent(fleet, arm_ca):
    collect(fleet, arm_ca)
    assert fleet.methods_seen() == {"GET"}


def test_cluster_json_is_what_az_aks_show_prints(fleet, arm_ca):
    live = by_name(collect(fleet, arm_ca, subscriptions=(SUB_A,)))["a-test-wf-aks"]
    printed = live.documents[CLUSTER_DOC]

    def leaves(value: Any, path: tuple = ()) -> dict:
        if isinstance(value, dict):
            return {
                k: v for key, item in value.items() for k, v in leaves(item, (*path, key)).items()
            }
        if isinstance(value, list):
            return {
                k: v for i, item in enumerate(value) for k, v in leaves(item, (*path, i)).items()
            }
        return {} if value is None else {path: value}

    # Every value az printed for this cluster is printed at the same place, under the same key.
    assert leaves(printed) == leaves(AZ_SHOW)
    assert printed["enableRbac"] is True and "enableRBAC" not in printed
    assert "properties" not in printed and printed["resourceGroup"] == "a-test-wf-rg"


def test_newer_api_fields_and_unknown_enums_do_not_crash(arm, arm_ca):
    arm.add_subscription(SUB_A)
    newer = cluster_resource(SUB_A, "future", futureProfile={"mode": "Auto"})
    newer["properties"]["networkProfile"]["networkPolicy"] = "somethingNew"
    newer["properties"]["autoUpgradeProfile"]["nodeOSUpgradeChannel"] = "Continuous"
    arm.add_cluster(SUB_A, newer)
    (item,) = collect(arm, arm_ca)
    assert item.documents[CLUSTER_DOC]["futureProfile"] == {"mode": "Auto"}
    (report,) = build_report([item], OBSERVED_AT).clusters
    statuses = {f.check_id: f for f in report.findings}
    policy = statuses["aks.network.policy"]
    assert policy.status is Status.UNKNOWN and "somethingNew" in policy.detail
    assert statuses["aks.lifecycle.node_os_upgrade"].status is Status.UNKNOWN
    assert not [f for f in report.findings if f.status is Status.ERROR]


@pytest.mark.parametrize(
    ("properties", "error"),
    [
        ({"enableRBAC": "yes"}, "enableRbac: Input should be a valid boolean"),
        ({"agentPoolProfiles": "nodepool1"}, "agentPoolProfiles: Input should be a valid list"),
    ],
)
def test_a_malformed_cluster_is_reported_by_name_and_the_others_scanned(
    arm, arm_ca, properties, error
):
    arm.add_subscription(SUB_A)
    arm.add_cluster(SUB_A, cluster_resource(SUB_A, "broken", **properties))
    arm.add_cluster(SUB_A, cluster_resource(SUB_A, "fine"))
    report = build_report(collect(arm, arm_ca), OBSERVED_AT)
    clusters = {c.name: c for c in report.clusters}
    assert clusters["broken"].mut is None and error in clusters["broken"].errors[0]
    assert clusters["fine"].mut is not None and clusters["fine"].errors == []


def test_live_scan_equals_its_snapshot_scanned_offline(fleet, arm_ca, tmp_path: Path):
    items = collect(fleet, arm_ca)
    for item in items:
        snapshot.write(item, tmp_path)
    directories = sorted(p.name for p in tmp_path.iterdir())
    assert f"aks_{SUB_A}_westeurope_web" in directories and len(directories) == 4
    observed = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    live = build_report(items, observed)
    offline = build_report(snapshot.read(tmp_path), observed)

    def essence(report):
        return [c.model_dump() for c in sorted(report.clusters, key=lambda c: c.name)]

    assert essence(live) == essence(offline)
    written = "".join(p.read_text() for p in tmp_path.rglob("*.json"))
    assert TOKEN not in written and TOKEN not in live.to_json()


def test_cli_options_become_azure_options():
    args = build_parser().parse_args(
        [
            "scan",
            "--provider",
            "azure",
            "--subscriptions",
            f"{SUB_A},{SUB_B}",
            "--concurrency",
            "4",
            "--clusters",
            "web,payments",
            "--locations",
            "westeurope",
        ]
    )
    options = PROVIDERS.get("azure").command_line.options(args)
    assert options == AzureOptions(
        subscriptions=(SUB_A, SUB_B),
        concurrency=4,
        clusters=("web", "payments"),
        locations=("westeurope",),
    )
