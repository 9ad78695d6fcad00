"""Live EKS collection: real boto3 against moto_server, with the EKS APIs moto lacks (access
entries, identity provider configs) and AWS failures (throttling, 500, AccessDenied) served by
the local EksGapServer in tests/servers, speaking the EKS REST-JSON wire format."""

import json
import os
import re
import subprocess
import sys
import urllib.request

import pytest

from mutguard.errors import InputError
from mutguard.models import Status
from mutguard.providers.eks_live import AwsOptions, EksCollector, role_arns
from mutguard.scan import build_report
from mutguard.sources import ScanError

from builders import OBSERVED_AT
from servers.aws import AwsFakes

OTHER_ACCOUNT = "210987654321"
ROLE_TEMPLATE = "arn:aws:iam::{account}:role/mutguard-readonly"
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
PRIVATE = {"endpointPublicAccess": False, "endpointPrivateAccess": True, "publicAccessCidrs": []}
NOT_SENT_BY_A_READ = r"(?!/clusters/[^/]+/identity-provider-configs/describe$).*"


def scan(**options):
    options.setdefault("in_cluster", False)  # moto's endpoints are fake names: never dial them
    items = list(EksCollector(AwsOptions(**options)).collect())
    return build_report(items, OBSERVED_AT)


@pytest.fixture
def fleet(aws: AwsFakes):
    """Two accounts, three regions, a public and a private cluster, one admin access entry."""
    home, other = aws.session(), aws.session(OTHER_ACCOUNT)
    aws.create_cluster(home, "us-east-1", "web", version="1.34")
    aws.create_cluster(home, "eu-west-1", "payments", version="1.34", resourcesVpcConfig=PRIVATE)
    aws.create_cluster(other, "ap-southeast-2", "data", version="1.31")
    aws.eks_gap.add_access_entry(
        "us-east-1",
        "web",
        {
            "principalArn": "arn:aws:iam::123456789012:role/admins",
            "type": "STANDARD",
            "kubernetesGroups": [],
            "username": "admins",
        },
        [{"policyArn": ADMIN_POLICY, "accessScope": {"type": "cluster", "namespaces": []}}],
    )
    aws.eks_gap.add_oidc_config(
        "eu-west-1",
        "payments",
        {
            "identityProviderConfigName": "sso",
            "issuerUrl": "https://sso.example.com",
            "clientId": "k8s",
            "usernameClaim": "email",
        },
    )
    return aws


def test_every_cluster_of_every_account_and_region(fleet):
    before = fleet.eks_gap.requests_seen("*", ".*") - fleet.eks_gap.requests_seen("GET", ".*")
    report = scan(
        regions=REGIONS, role_arns=(ROLE_TEMPLATE,), accounts=("123456789012", OTHER_ACCOUNT)
    )
    clusters = {c.name: c for c in report.clusters}
    assert report.errors == []
    assert {(c.name, c.account, c.location) for c in report.clusters} == {
        ("web", "123456789012", "us-east-1"),
        ("payments", "123456789012", "eu-west-1"),
        ("data", OTHER_ACCOUNT, "ap-southeast-2"),
    }
    assert (clusters["web"].mut, clusters["payments"].mut) == (2, 3)
    assert clusters["data"].mut == 1  # 1.31 still authenticates anonymous requests
    admin = next(f for f in clusters["web"].findings if f.check_id == "eks.access.admin_policy")
    assert admin.status is Status.FAIL and admin.resource == "arn:aws:iam::123456789012:role/admins"
    assert clusters["web"].mut_credential == 1
    oidc = next(f for f in clusters["payments"].findings if f.check_id == "eks.auth.oidc_prefixes")
    assert oidc.status is Status.FAIL
    # Read-only: nothing but GETs and the describe POST reached the EKS API during the scan.
    after = fleet.eks_gap.requests_seen("*", ".*") - fleet.eks_gap.requests_seen("GET", ".*")
    described = fleet.eks_gap.requests_seen(
        "POST", r"/clusters/[^/]+/identity-provider-configs/describe"
    )
    assert after - before == described


def test_only_the_named_clusters_are_read(fleet):
    report = scan(regions=REGIONS, clusters=("payments", "gone"))
    assert [(c.name, c.location) for c in report.clusters] == [("payments", "eu-west-1")]
    assert fleet.eks_gap.requests_seen("GET", "/clusters/web.*") == 0


def test_default_regions_are_the_accounts_enabled_regions(fleet):
    report = scan()
    assert {c.name for c in report.clusters} == {"web", "payments"}


def test_throttling_is_retried(fleet):
    fleet.eks_gap.add_fault(
        "GET", "/clusters", 429, "ThrottlingException", "Rate exceeded", times=2, region="us-east-1"
    )
    report = scan(regions=("us-east-1",), max_attempts=3)
    assert [c.name for c in report.clusters] == ["web"] and report.errors == []
    assert fleet.eks_gap.requests_seen("GET", "/clusters") >= 3


def test_a_failing_region_is_named_and_the_others_report(fleet):
    fleet.eks_gap.add_fault(
        "GET", "/clusters", 500, "ServerException", "Internal failure", region="eu-west-1"
    )
    report = scan(regions=("us-east-1", "eu-west-1"), max_attempts=2)
    assert [c.name for c in report.clusters] == ["web"]
    assert report.errors == [
        ScanError(
            scope="eks:123456789012:eu-west-1",
            message="eks:ListClusters: ServerException: Internal failure",
        )
    ]


def test_a_failing_cluster_is_an_error_result_naming_it(fleet):
    fleet.eks_gap.add_fault(
        "GET",
        "/clusters/payments",
        403,
        "AccessDeniedException",
        "not authorized to perform eks:DescribeCluster",
    )
    report = scan(regions=REGIONS)
    payments = next(c for c in report.clusters if c.name == "payments")
    assert payments.mut is None and payments.location == "eu-west-1"
    assert "eks:DescribeCluster payments: AccessDeniedException" in payments.errors[0]
    assert next(c for c in report.clusters if c.name == "web").mut == 2


def test_denied_access_entries_make_their_check_unknown(fleet):
    fleet.eks_gap.add_fault(
        "GET",
        "/clusters/web/access-entries",
        403,
        "AccessDeniedException",
        "not authorized to perform eks:ListAccessEntries",
    )
    web = scan(regions=("us-east-1",)).clusters[0]
    admin = next(f for f in web.findings if f.check_id == "eks.access.admin_policy")
    assert admin.status is Status.UNKNOWN and "AccessDeniedException" in admin.detail
    assert "mut_credential" in web.mut_upper_bound


def test_node_access_entries_have_no_policies_to_list(fleet):
    """EKS associates access policies with STANDARD entries only (EKS User Guide, "Associate
    access policies with access entries"): a node entry's are not asked for; a STANDARD entry's,
    and those of an entry whose type is not a node type, still are."""
    for role, entry_type in (("nodes", "EC2_LINUX"), ("windows-nodes", "EC2_WINDOWS")):
        fleet.eks_gap.add_access_entry(
            "us-east-1",
            "web",
            {
                "principalArn": f"arn:aws:iam::123456789012:role/{role}",
                "type": entry_type,
                "kubernetesGroups": [],
                "username": "system:node:{{EC2PrivateDNSName}}",
            },
        )
    fleet.eks_gap.add_access_entry(
        "us-east-1",
        "web",
        {"principalArn": "arn:aws:iam::123456789012:role/future", "kubernetesGroups": []},
        [{"policyArn": ADMIN_POLICY, "accessScope": {"type": "cluster", "namespaces": []}}],
    )
    web = scan(regions=("us-east-1",)).clusters[0]
    listed = r"/clusters/web/access-entries/[^/]+/access-policies"
    assert fleet.eks_gap.requests_seen("GET", listed) == 2  # admins and future
    admins = {
        f.resource.rpartition("/")[2]
        for f in web.findings
        if f.check_id == "eks.access.admin_policy" and f.status is Status.FAIL
    }
    assert admins == {"admins", "future"}


def test_role_arns_are_validated():
    with pytest.raises(InputError, match="no --accounts"):
        role_arns(AwsOptions(role_arns=(ROLE_TEMPLATE,)))
    with pytest.raises(InputError, match="not an IAM role ARN"):
        role_arns(AwsOptions(role_arns=("arn:aws:iam::12:user/x",)))
    assert role_arns(AwsOptions(role_arns=(ROLE_TEMPLATE,), accounts=("111111111111",))) == [
        "arn:aws:iam::111111111111:role/mutguard-readonly"
    ]


def test_cli_live_scan_and_snapshot_agree(fleet, tmp_path):
    env = {**os.environ, **fleet.env}
    mutguard = [sys.executable, "-m", "mutguard.cli"]
    regions = ",".join(REGIONS)
    live = subprocess.run(
        [
            *mutguard,
            "scan",
            "--provider",
            "aws",
            "--skip-in-cluster",
            "--regions",
            regions,
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert live.returncode == 0, live.stderr
    saved = subprocess.run(
        [
            *mutguard,
            "snapshot",
            "--provider",
            "aws",
            "--skip-in-cluster",
            "--regions",
            regions,
            "-o",
            str(tmp_path),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert saved.returncode == 0, saved.stderr
    web_dir = tmp_path / "eks_123456789012_us-east-1_web"
    assert sorted(p.name for p in web_dir.iterdir()) == [
        "access-entries.json",
        "cluster.json",
        "identity-providers.json",
    ]
    assert json.loads((web_dir / "cluster.json").read_text())["cluster"]["name"] == "web"
    offline = subprocess.run(
        [*mutguard, "scan", "--snapshot", str(tmp_path), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert offline.returncode == 0, offline.stderr

    def essence(stdout):
        return sorted(
            (
                c["name"],
                c["mut"],
                c["mut_credential"],
                sorted(
                    (f["check_id"], f["status"], f.get("resource", c["arn_or_id"]))
                    for f in c["findings"]
                ),
            )
            for c in json.loads(stdout)["clusters"]
        )

    assert essence(live.stdout) == essence(offline.stdout)
    assert "testing" not in saved.stdout + "".join(p.read_text() for p in tmp_path.rglob("*.json"))


def test_verbose_logs_each_account_region_and_cluster_it_reads(fleet):
    env = {**os.environ, **fleet.env}
    command = ["scan", "--provider", "aws", "--skip-in-cluster", "--regions", ",".join(REGIONS)]
    done = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", *command, "--format", "json", "-v"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    log = done.stderr
    # The fleet: web in us-east-1 and payments in eu-west-1 of the home account.
    assert "account 123456789012: 3 region(s) to list" in log
    assert "account 123456789012, region us-east-1: 1 cluster(s)" in log
    assert "account 123456789012, region ap-southeast-2: 0 cluster(s)" in log
    assert re.search(r"read cluster web in eks/123456789012/us-east-1 \(\d+\.\d s\)", log)
    assert re.search(r"assessed 2 cluster\(s\) in \d+\.\d s", log)
    assert env["AWS_SECRET_ACCESS_KEY"] not in log
    quiet = subprocess.run(
        [sys.executable, "-m", "mutguard.cli", *command, "--format", "json", "-q"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_cli_without_credentials_reports_the_account_error(aws, tmp_path):
    env = {
        k: v
        for k, v in {**os.environ, **aws.env}.items()
        if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mutguard.cli",
            "scan",
            "--provider",
            "aws",
            "--regions",
            "us-east-1",
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 5  # nothing could be read at all: not "some targets failed"
    errors = json.loads(done.stdout)["errors"]
    assert errors[0]["scope"] == "eks:current-account"
    assert "credentials" in errors[0]["message"].lower()
    assert done.stderr.startswith(
        "mutguard: no cluster could be read: eks:current-account: sts:GetCallerIdentity: "
        "AWS credentials not found"
    )
    assert "Traceback" not in done.stderr


def test_roles_are_assumed_with_the_external_id(fleet):
    scan(
        regions=("us-east-1",),
        role_arns=(ROLE_TEMPLATE,),
        accounts=(OTHER_ACCOUNT,),
        external_id="ext-7f3a",
    )
    with urllib.request.urlopen(f"{fleet.moto.url}/moto-api/data.json") as answer:
        assumed = json.load(answer)["sts"]["AssumedRole"]
    ours = [a for a in assumed if a["session_name"] == "mutguard"]
    assert [(a["role_arn"], a["external_id"]) for a in ours] == [
        (f"arn:aws:iam::{OTHER_ACCOUNT}:role/mutguard-readonly", "ext-7f3a")
    ]
