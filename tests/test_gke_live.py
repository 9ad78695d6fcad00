"""Live GKE collection: the real google-cloud-container and resource-manager clients (REST
transport) against the local GkeServer in tests/servers, which speaks the v1 wire format.

The Python API points the clients at the fake with client_options; the command line, which
must run unchanged, reaches it the way a corporate network would: through an HTTPS proxy
(HTTPS_PROXY, REQUESTS_CA_BUNDLE) with Application Default Credentials from a file.
"""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials

from mutguard.cli import main
from mutguard.models import Status
from mutguard.providers.gke_live import GcpOptions, GkeCollector
from mutguard.scan import build_report
from mutguard.sources import ClusterSource, ScanError

from builders import CLOUD_PLATFORM, OBSERVED_AT, finding, gke_cluster
from servers.gke import TEST_TOKEN, GkeServer

SHOP, DATA, DENIED = "shop-prod-1234", "data-prod-5678", "secret-prod-9999"
MUTGUARD = [sys.executable, "-m", "mutguard.cli"]


@pytest.fixture
def fake() -> Iterator[GkeServer]:
    """Two projects with clusters, one that denies the scan, and one being deleted."""
    with GkeServer() as server:
        server.add_cluster(SHOP, gke_cluster("web", project=SHOP))
        exposed = gke_cluster(
            "batch", project=SHOP, metadata="GCE_METADATA", scopes=[CLOUD_PLATFORM]
        )
        server.add_cluster(SHOP, exposed)
        server.add_cluster(DATA, gke_cluster("warehouse", public=False, project=DATA))
        for number, project in enumerate((DATA, DENIED, SHOP), start=101):
            server.add_project(project, number)
        server.add_project("old-prod-0001", 104, state="DELETE_REQUESTED")
        server.add_fault(
            "GET",
            f"/v1/projects/{DENIED}/locations/-/clusters",
            403,
            f"Permission 'container.clusters.list' denied on resource 'projects/{DENIED}'.",
        )
        yield server


def options(fake: GkeServer, **settings) -> GcpOptions:
    endpoint = {"api_endpoint": fake.url}
    settings.setdefault("in_cluster", False)  # the fixture's endpoints are real addresses
    return GcpOptions(
        credentials=AnonymousCredentials(),
        container_client_options=endpoint,
        resource_manager_client_options=endpoint,
        retry_timeout=5,
        **settings,
    )


def collect(fake: GkeServer, **settings) -> list:
    return list(GkeCollector(options(fake, **settings)).collect())


def test_every_cluster_of_every_project_and_the_failing_one_named(fake):
    items = collect(fake, projects=(SHOP, DENIED, DATA))
    report = build_report(items, OBSERVED_AT)
    clusters = {c.name: c for c in report.clusters}
    assert {(c.name, c.account, c.location) for c in report.clusters} == {
        ("web", SHOP, "europe-west1-b"),
        ("batch", SHOP, "europe-west1-b"),
        ("warehouse", DATA, "europe-west1-b"),
    }
    assert report.errors == [
        ScanError(
            scope=f"gke:{DENIED}",
            message=f"container.clusters.list {DENIED}: 403 PERMISSION_DENIED: Permission "
            f"'container.clusters.list' denied on resource 'projects/{DENIED}'.",
        )
    ]
    assert (clusters["web"].mut, clusters["warehouse"].mut) == (2, 3)
    assert clusters["batch"].mut_workload == 1  # the metadata server hands out an Editor token
    # Read-only: nothing but GET reached the APIs.
    assert fake.requests_seen("*") == fake.requests_seen("GET") == 3


def test_only_the_named_clusters_and_locations_are_kept(fake):
    named = collect(fake, projects=(SHOP, DATA), clusters=("web", "warehouse"))
    assert sorted(i.name for i in named) == ["warehouse", "web"]
    elsewhere = collect(fake, projects=(SHOP, DATA), locations=("us-central1",))
    assert elsewhere == []
    here = collect(fake, projects=(SHOP,), locations=("europe-west1-b",), clusters=("batch",))
    assert [i.name for i in here] == ["batch"]


def test_projects_come_from_search_across_pages(fake):
    items = collect(fake)
    assert fake.requests_seen("GET", "/v3/projects:search") == 2  # PAGE_SIZE 2, three projects
    assert {i.account for i in items if isinstance(i, ClusterSource)} == {SHOP, DATA}
    assert [i.scope for i in items if isinstance(i, ScanError)] == [f"gke:{DENIED}"]
    assert fake.requests_seen("GET", "/v1/projects/old-prod-0001/.*") == 0  # not ACTIVE


def test_a_failing_project_search_is_named(fake):
    fake.add_fault("GET", "/v3/projects:search", 403, "The caller does not have permission")
    assert collect(fake) == [
        ScanError(
            scope="gke:projects",
            message="cloudresourcemanager.projects.search: 403 PERMISSION_DENIED: The caller "
            "does not have permission",
        )
    ]


def test_throttling_is_retried(fake):
    fake.add_fault("GET", f"/v1/projects/{DATA}/.*", 429, "Quota exceeded", times=1)
    items = collect(fake, projects=(DATA,))
    assert [i.name for i in items] == ["warehouse"]
    assert fake.requests_seen("GET", f"/v1/projects/{DATA}/.*") == 2


def test_locations_that_did_not_answer_are_reported(fake):
    fake.set_missing_zones(SHOP, ["us-central1-c"])
    items = collect(fake, projects=(SHOP,))
    assert sorted(i.name for i in items if isinstance(i, ClusterSource)) == ["batch", "web"]
    errors = [i for i in items if isinstance(i, ScanError)]
    assert errors == [
        ScanError(
            scope=f"gke:{SHOP}",
            message=f"container.clusters.list {SHOP}: no answer from us-central1-c",
        )
    ]


def test_the_document_is_what_gcloud_prints_without_secrets(fake):
    cluster = gke_cluster("legacy", project=DATA)
    cluster["masterAuth"].update(
        username="admin", password="hunter2-static", clientKey="UFJJVkFURSBLRVk="
    )
    fake.add_cluster(DATA, cluster)
    items = {i.name: i for i in collect(fake, projects=(DATA,))}
    document = items["legacy"].documents["cluster.json"]
    # Enums crossed the wire as numbers and came back as gcloud's names; int64 stays a string.
    assert document["status"] == "RUNNING"
    assert document["defaultMaxPodsConstraint"] == {"maxPodsPerNode": "110"}
    assert document["masterAuth"] == {
        "username": "admin",
        "clusterCaCertificate": cluster["masterAuth"]["clusterCaCertificate"],
    }
    expected = {k: v for k, v in cluster.items() if k != "masterAuth"}
    assert {k: v for k, v in document.items() if k != "masterAuth"} == expected


def test_unknown_enum_values_and_fields_from_newer_apis_do_not_crash(fake):
    newer = gke_cluster("newer", project=DATA)
    newer["anonymousAuthenticationConfig"]["mode"] = 7  # an enum number this SDK does not know
    newer["someFeatureOf2027"] = {"enabled": True}
    fake.add_cluster(DATA, newer)
    items = collect(fake, projects=(DATA,))
    report = build_report(items, OBSERVED_AT)
    cluster = next(c for c in report.clusters if c.name == "newer")
    anonymous = finding(cluster, "gke.auth.anonymous")
    assert anonymous.status is Status.UNKNOWN and "'7'" in anonymous.detail
    assert cluster.errors == [] and "mut" in cluster.mut_upper_bound


def test_no_cluster_is_no_error(fake):
    assert collect(fake, projects=("empty-prod-0002",)) == []


def proxy_env(fake: GkeServer, tmp_path: Path) -> dict[str, str]:
    """A subprocess environment whose only way to Google is the fake, as an HTTPS proxy."""
    adc = tmp_path / "application_default_credentials.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "mutguard-test.apps.googleusercontent.com",
                "client_secret": "not-a-secret",
                "refresh_token": "1//mutguard-test-refresh-token",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    dropped = ("GOOGLE_", "CLOUDSDK_", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(dropped)}
    env.update(
        GOOGLE_APPLICATION_CREDENTIALS=str(adc),
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud"),  # no gcloud configuration of the developer's
        NO_GCE_CHECK="True",  # google-auth: do not probe for a Compute Engine metadata server
        HTTPS_PROXY=fake.url,
        https_proxy=fake.url,
        REQUESTS_CA_BUNDLE=str(fake.ca_file),
    )
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*MUTGUARD, *args], env=env, capture_output=True, text=True)


def essence(report: dict) -> list:
    return sorted(
        (
            c["name"],
            c["account"],
            c["mut"],
            c["mut_workload"],
            c["mut_credential"],
            sorted(
                (f["check_id"], f["status"], f.get("resource", c["arn_or_id"]))
                for f in c["findings"]
            ),
        )
        for c in report["clusters"]
    )


def test_cli_live_scan_and_snapshot_agree(fake, tmp_path, capsys):
    env = proxy_env(fake, tmp_path)
    # --skip-in-cluster: the fixture's endpoints are real addresses, never to be dialled.
    projects = ["--projects", f"{SHOP},{DENIED},{DATA}", "--skip-in-cluster"]
    live = run(["scan", "--provider", "gcp", *projects, "--format", "json"], env)
    assert live.returncode == 3, live.stderr  # the denied project is a partial-scan error
    report = json.loads(live.stdout)
    assert [e["scope"] for e in report["errors"]] == [f"gke:{DENIED}"]
    saved = run(["snapshot", "--provider", "gcp", *projects, "-o", str(tmp_path / "snap")], env)
    assert saved.returncode == 3, saved.stderr
    assert f"error gke:{DENIED}" in saved.stderr
    web = tmp_path / "snap" / f"gke_{SHOP}_europe-west1-b_web"
    assert sorted(p.name for p in web.iterdir()) == ["cluster.json"]
    assert main(["scan", "--snapshot", str(tmp_path / "snap"), "--format", "json"]) == 0
    assert essence(json.loads(capsys.readouterr().out)) == essence(report)
    # The ADC token went to the API, never into what was written.
    assert fake.authorizations == {f"Bearer {TEST_TOKEN}"}
    written = "".join(p.read_text() for p in (tmp_path / "snap").rglob("*.json"))
    assert TEST_TOKEN not in live.stdout + written
    assert fake.requests_seen("*") - fake.requests_seen("GET") == fake.requests_seen(
        "POST", "/token"
    )


def test_cli_without_credentials_reports_the_error(fake, tmp_path):
    env = proxy_env(fake, tmp_path)
    del env["GOOGLE_APPLICATION_CREDENTIALS"]
    args = ["--projects", SHOP, "--skip-in-cluster", "--format", "json"]
    done = run(["scan", "--provider", "gcp", *args], env)
    assert done.returncode == 5, done.stderr  # nothing could be read at all
    assert done.stderr.startswith("mutguard: no cluster could be read: gke: ")
    errors = json.loads(done.stdout)["errors"]
    assert [e["scope"] for e in errors] == ["gke"]
    assert "credentials" in errors[0]["message"].lower()
    assert fake.requests_seen("*") == 0
