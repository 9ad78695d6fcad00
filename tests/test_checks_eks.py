"""Each EKS check on tiny describe-cluster fixtures: PASS, FAIL and UNKNOWN with its reason."""

from datetime import UTC, datetime

import pytest

from mutguard.models import Status
from mutguard.scan import evaluate

from builders import access_entry, assess, describe_cluster, finding, source

ADMIN_ROLE = "arn:aws:iam::123456789012:role/platform-admins"
OIDC = {
    "identityProviderConfig": {
        "oidc": {
            "identityProviderConfigName": "corp",
            "issuerUrl": "https://login.example.com",
            "clientId": "kubernetes",
            "usernameClaim": "email",
            "groupsClaim": "groups",
            "status": "ACTIVE",
        }
    }
}


def status(check_id, cluster=None, **documents):
    return finding(assess(cluster or describe_cluster(), **documents), check_id)


@pytest.mark.parametrize(
    ("cluster", "expected", "detail"),
    [
        (describe_cluster(cidrs=["0.0.0.0/0"]), Status.FAIL, "0.0.0.0/0"),
        (describe_cluster(cidrs=["203.0.113.0/24", "::/0"]), Status.FAIL, "::/0"),
        (describe_cluster(cidrs=["8.0.0.0/7"]), Status.FAIL, "8.0.0.0/7"),
        (describe_cluster(cidrs=["203.0.113.0/24"]), Status.PASS, "203.0.113.0/24"),
        (describe_cluster(public=False, private=True), Status.PASS, "disabled"),
        (describe_cluster(cidrs=["not-a-cidr"]), Status.UNKNOWN, "not-a-cidr"),
    ],
)
def test_endpoint_public_unrestricted(cluster, expected, detail):
    result = status("eks.endpoint.public_unrestricted", cluster)
    assert result.status is expected and detail in result.detail


def test_public_endpoint_without_cidrs_means_everyone():
    cluster = describe_cluster()
    del cluster["cluster"]["resourcesVpcConfig"]["publicAccessCidrs"]
    assert status("eks.endpoint.public_unrestricted", cluster).status is Status.FAIL


def test_missing_vpc_config_is_unknown_and_bounds_mut():
    cluster = describe_cluster()
    del cluster["cluster"]["resourcesVpcConfig"]
    report = assess(cluster)
    assert finding(report, "eks.endpoint.public_unrestricted").status is Status.UNKNOWN
    assert "mut" in report.mut_upper_bound


def test_private_access_and_private_only():
    restricted = describe_cluster(cidrs=["203.0.113.0/24"], private=True)
    assert status("eks.endpoint.private_access", restricted).status is Status.PASS
    assert status("eks.endpoint.private_only", restricted).status is Status.FAIL
    private = describe_cluster(public=False, private=True)
    assert status("eks.endpoint.private_only", private).status is Status.PASS
    assert status("eks.endpoint.private_access", describe_cluster()).status is Status.FAIL


@pytest.mark.parametrize(
    ("version", "probe", "expected"),
    [
        ("1.31", None, Status.FAIL),
        ("1.32", None, Status.PASS),
        ("1.35", {"anonymous_version": True, "anonymous_api": False}, Status.FAIL),  # probe wins
        ("1.29", {"anonymous_version": False, "anonymous_api": False}, Status.PASS),
        ("latest", None, Status.UNKNOWN),
    ],
)
def test_anonymous_auth(version, probe, expected):
    documents = {"probe": probe} if probe else {}
    assert (
        status("eks.auth.anonymous", describe_cluster(version=version), **documents).status
        is expected
    )


@pytest.mark.parametrize(
    ("mode", "access_entries", "api_only"),
    [
        ("CONFIG_MAP", Status.FAIL, Status.FAIL),
        ("API_AND_CONFIG_MAP", Status.PASS, Status.FAIL),
        ("API", Status.PASS, Status.PASS),
        ("SOMETHING_NEW", Status.UNKNOWN, Status.UNKNOWN),
        (None, Status.UNKNOWN, Status.UNKNOWN),
    ],
)
def test_authentication_mode(mode, access_entries, api_only):
    cluster = describe_cluster(mode=mode)
    assert status("eks.auth.access_entries", cluster).status is access_entries
    assert status("eks.auth.api_only", cluster).status is api_only


def test_unknown_mode_says_which_value():
    assert (
        "SOMETHING_NEW"
        in status("eks.auth.access_entries", describe_cluster(mode="SOMETHING_NEW")).detail
    )


def test_oidc_prefixes():
    assert status("eks.auth.oidc_prefixes").status is Status.UNKNOWN
    assert status("eks.auth.oidc_prefixes", identity_providers=[]).status is Status.PASS
    result = status("eks.auth.oidc_prefixes", identity_providers=[OIDC])
    assert result.status is Status.FAIL and "usernamePrefix or groupsPrefix" in result.detail
    prefixed = {
        "identityProviderConfig": {
            "oidc": {
                **OIDC["identityProviderConfig"]["oidc"],
                "usernamePrefix": "sso:",
                "groupsPrefix": "sso:",
            }
        }
    }
    assert status("eks.auth.oidc_prefixes", identity_providers=[prefixed]).status is Status.PASS


def test_bootstrap_creator_admin():
    config_map = assess(describe_cluster(mode="CONFIG_MAP", bootstrap_admin=True))
    assert finding(config_map, "eks.access.bootstrap_creator_admin").status is Status.FAIL
    assert config_map.mut_credential == 1  # the hidden creator admin over a public endpoint
    unseen = assess(describe_cluster(bootstrap_admin=True))
    assert finding(unseen, "eks.access.bootstrap_creator_admin").mut_gain == 1
    # With access entries read, the creator's admin is an entry that eks.access.admin_policy judges.
    seen = assess(describe_cluster(bootstrap_admin=True), access_entries=[])
    assert not [f for f in seen.findings if f.check_id == "eks.access.bootstrap_creator_admin"]
    assert seen.mut_credential == 2  # the creator's entry is gone: leak + one bad binding
    assert status("eks.access.bootstrap_creator_admin").status is Status.PASS


def test_admin_access_policy_per_principal():
    entries = [
        access_entry(ADMIN_ROLE, ("AmazonEKSClusterAdminPolicy", "cluster")),
        access_entry("arn:aws:iam::123456789012:role/devs", ("AmazonEKSAdminPolicy", "namespace")),
        access_entry("arn:aws:iam::123456789012:role/viewers", ("AmazonEKSViewPolicy", "cluster")),
    ]
    report = assess(describe_cluster(), access_entries=entries)
    results = [f for f in report.findings if f.check_id == "eks.access.admin_policy"]
    assert [(f.status, f.resource) for f in results] == [(Status.FAIL, ADMIN_ROLE)]
    assert "AmazonEKSClusterAdminPolicy at cluster scope" in results[0].detail
    assert status("eks.access.admin_policy", access_entries=entries[1:]).status is Status.PASS
    unread = status("eks.access.admin_policy")
    assert unread.status is Status.UNKNOWN and "access-entries.json" in unread.detail
    assert not [
        f
        for f in assess(describe_cluster(mode="CONFIG_MAP")).findings
        if f.check_id == "eks.access.admin_policy"
    ]


@pytest.mark.parametrize(
    ("policy", "scope", "namespaces", "admin"),
    [
        ("AmazonEKSEditPolicy", "cluster", [], True),  # reads and writes every secret
        ("AmazonEKSAdminViewPolicy", "cluster", [], True),  # includes secrets
        ("AmazonEKSSecretReaderPolicy", "cluster", [], True),
        ("AmazonEKSViewPolicy", "cluster", [], False),
        ("AmazonEKSAdminPolicy", "namespace", ["kube-*"], True),  # pods in kube-system
        ("AmazonEKSClusterAdminPolicy", "namespace", ["team-a"], False),
        ("AmazonEKSSecretReaderPolicy", "namespace", ["kube-system"], False),
    ],
)
def test_admin_equivalent_access_policies(policy, scope, namespaces, admin):
    entry = access_entry(ADMIN_ROLE)
    entry["associatedAccessPolicies"] = [
        {
            "policyArn": f"arn:aws:eks::aws:cluster-access-policy/{policy}",
            "accessScope": {"type": scope, "namespaces": namespaces},
        }
    ]
    result = status("eks.access.admin_policy", access_entries=[entry])
    assert result.status is (Status.FAIL if admin else Status.PASS)


def test_secrets_encryption_and_audit_logs():
    key = "arn:aws:kms:eu-west-1:123456789012:key/abc"
    assert (
        status("eks.secrets.kms_encryption", describe_cluster(secrets_key=key)).status
        is Status.PASS
    )
    assert status("eks.secrets.kms_encryption").status is Status.FAIL
    logged = describe_cluster(log_types=("api", "audit", "authenticator"))
    assert status("eks.logging.audit", logged).status is Status.PASS
    partial = status("eks.logging.audit", describe_cluster(log_types=("audit",)))
    assert partial.status is Status.FAIL and partial.detail.endswith("authenticator")


@pytest.mark.parametrize(
    ("version", "supported", "standard"),
    [
        ("1.35", Status.PASS, Status.PASS),
        ("1.33", Status.PASS, Status.FAIL),  # standard support ended 2026-07-29
        ("1.29", Status.FAIL, Status.FAIL),  # extended support ended 2026-03-23
        ("1.36", Status.UNKNOWN, Status.UNKNOWN),  # announced, dates not in the calendar
        ("1.99", Status.UNKNOWN, Status.UNKNOWN),
    ],
)
def test_version_support_on_the_scan_date(version, supported, standard):
    cluster = describe_cluster(version=version)
    assert status("eks.version.supported", cluster).status is supported
    assert status("eks.version.standard_support", cluster).status is standard


@pytest.mark.parametrize(
    ("version", "as_of", "supported", "detail"),
    [
        # The calendar (mutguard/data/eks_versions.json) has rows 1.23-1.36; 1.36 without dates.
        ("1.37", "2026-12-04", Status.UNKNOWN, "support dates for 1.37 are not known"),
        ("1.36", "2030-01-01", Status.UNKNOWN, "support dates for 1.36 are not known"),
        # 1.34 is judged by its own row on any day, also long after the data was written.
        ("1.34", "2027-12-02", Status.PASS, "supported until 2027-12-02"),
        ("1.34", "2027-12-03", Status.FAIL, "extended support ended on 2027-12-02"),
        # Older than the oldest row (1.23: extended support until 2024-10-11): support ended
        # no later than 1.23's did, but before that day nothing says when.
        ("1.22", "2024-10-12", Status.FAIL, "older than 1.23, whose support ended on 2024-10-11"),
        ("1.22", "2024-10-11", Status.UNKNOWN, "support dates for 1.22 are not known"),
    ],
)
def test_version_support_is_judged_as_of_the_scan_date_and_never_guessed(
    version, as_of, supported, detail
):
    observed_at = datetime.fromisoformat(as_of).replace(tzinfo=UTC)
    report = evaluate(source(describe_cluster(version=version)), observed_at)
    result = finding(report, "eks.version.supported")
    assert result.status is supported and detail in result.detail


def test_malformed_field_names_the_cluster_and_the_field():
    cluster = describe_cluster()
    cluster["cluster"]["resourcesVpcConfig"]["endpointPublicAccess"] = "yes"
    report = assess(cluster)
    assert report.mut is None
    assert "prod" in report.errors[0] and "endpointPublicAccess" in report.errors[0]


def test_unknown_fields_from_newer_api_versions_are_ignored():
    cluster = describe_cluster()
    cluster["cluster"]["someFeatureOf2027"] = {"enabled": True}
    assert assess(cluster).mut is not None


def aws_auth(map_roles: str) -> dict:
    """`kubectl -n kube-system get configmap aws-auth -o json`."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {"mapRoles": map_roles},
    }


MASTERS = """- rolearn: arn:aws:iam::123456789012:role/ci-deployer
  username: ci
  groups:
    - system:masters
- rolearn: arn:aws:iam::123456789012:role/eks-nodes
  username: system:node:{{EC2PrivateDNSName}}
  groups:
    - system:bootstrappers
    - system:nodes
"""


def test_aws_auth_system_masters():
    cluster = describe_cluster(mode="CONFIG_MAP")
    report = assess(cluster, aws_auth=aws_auth(MASTERS))
    result = finding(report, "eks.access.aws_auth_masters")
    assert result.status is Status.FAIL
    assert result.resource == "arn:aws:iam::123456789012:role/ci-deployer"
    assert result.mut_gain == 0  # the creator's hidden system:masters is a second such key
    not_found = {"apiVersion": "v1", "kind": "Status", "reason": "NotFound", "code": 404}
    assert status("eks.access.aws_auth_masters", cluster, aws_auth=not_found).status is Status.PASS
    assert status("eks.access.aws_auth_masters", cluster).status is Status.UNKNOWN
    broken = assess(cluster, aws_auth=aws_auth("- rolearn: [unclosed"))
    assert finding(broken, "eks.access.aws_auth_masters").status is Status.UNKNOWN
    assert any(e.startswith("aws-auth.json: ") for e in broken.errors)
    api_mode = assess(describe_cluster(mode="API"), aws_auth=aws_auth(MASTERS))
    assert not [f for f in api_mode.findings if f.check_id == "eks.access.aws_auth_masters"]
