"""The fakes speak the real wire format: every call here goes through a real boto3 client."""

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from servers.aws import DEFAULT_ACCOUNT, AwsFakes

REGION = "us-east-1"
OTHER_REGION = "eu-west-1"
CLUSTER = "prod"
CREATED = 1_700_000_000.5
ADMIN_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
VIEW_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"


def principal(name: str) -> str:
    # A role path puts "/" inside the ARN, which botocore must percent-encode in the URL.
    return f"arn:aws:iam::{DEFAULT_ACCOUNT}:role/team/{name}"


def access_entry(name: str) -> dict[str, Any]:
    return {
        "principalArn": principal(name),
        "kubernetesGroups": ["viewers"],
        "accessEntryArn": (
            f"arn:aws:eks:{REGION}:{DEFAULT_ACCOUNT}:access-entry/{CLUSTER}/role/{name}/0"
        ),
        "createdAt": CREATED,
        "modifiedAt": CREATED,
        "tags": {},
        "username": f"arn:aws:sts::{DEFAULT_ACCOUNT}:assumed-role/{name}/{{{{SessionName}}}}",
        "type": "STANDARD",
    }


def policy(arn: str, namespaces: list[str] | None = None) -> dict[str, Any]:
    scope = {"type": "namespace", "namespaces": namespaces} if namespaces else {"type": "cluster"}
    return {"policyArn": arn, "accessScope": scope, "associatedAt": CREATED, "modifiedAt": CREATED}


def retrying(total_attempts: int) -> Config:
    # Not "max_attempts": in Config(retries=...) that key counts retries (botocore adds one),
    # whereas AWS_MAX_ATTEMPTS and the config file's max_attempts count all attempts.
    return Config(retries={"mode": "standard", "total_max_attempts": total_attempts})


def test_list_access_entries_pages_through_the_paginator(aws: AwsFakes) -> None:
    names = [f"dev{i}" for i in range(5)]
    for name in names:
        aws.eks_gap.add_access_entry(REGION, CLUSTER, access_entry(name), [])
    aws.eks_gap.add_access_entry(OTHER_REGION, CLUSTER, access_entry("elsewhere"), [])
    eks = aws.session().client("eks")
    assert eks.meta.endpoint_url == aws.eks_gap.url

    pages = list(eks.get_paginator("list_access_entries").paginate(clusterName=CLUSTER))

    arns = [principal(n) for n in names]
    assert [p["accessEntries"] for p in pages] == [arns[0:2], arns[2:4], arns[4:]]
    assert aws.eks_gap.requests_seen("GET", f"/clusters/{CLUSTER}/access-entries") == 3
    # The region comes from the SigV4 credential scope.
    other = aws.session().client("eks", region_name=OTHER_REGION)
    assert other.list_access_entries(clusterName=CLUSTER)["accessEntries"] == [
        principal("elsewhere")
    ]
    assert eks.list_access_entries(clusterName="never-registered")["accessEntries"] == []


def test_describe_access_entry_and_its_associated_policies(aws: AwsFakes) -> None:
    policies = [
        policy(ADMIN_POLICY),
        policy(VIEW_POLICY, ["team-a", "team-b"]),
        policy(VIEW_POLICY, ["team-c"]),
    ]
    aws.eks_gap.add_access_entry(REGION, CLUSTER, access_entry("admin"), policies)
    eks = aws.session().client("eks")

    entry = eks.describe_access_entry(clusterName=CLUSTER, principalArn=principal("admin"))
    listed = (
        eks.get_paginator("list_associated_access_policies")
        .paginate(clusterName=CLUSTER, principalArn=principal("admin"))
        .build_full_result()
    )

    assert entry["accessEntry"]["clusterName"] == CLUSTER
    assert entry["accessEntry"]["createdAt"].timestamp() == CREATED
    assert listed["principalArn"] == principal("admin")
    assert [p["accessScope"] for p in listed["associatedAccessPolicies"]] == [
        {"type": "cluster"},
        {"type": "namespace", "namespaces": ["team-a", "team-b"]},
        {"type": "namespace", "namespaces": ["team-c"]},
    ]
    with pytest.raises(ClientError) as missing:
        eks.describe_access_entry(clusterName=CLUSTER, principalArn=principal("nobody"))
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_identity_provider_configs_list_and_describe(aws: AwsFakes) -> None:
    for name in ("okta", "dex", "keycloak"):
        aws.eks_gap.add_oidc_config(
            REGION,
            CLUSTER,
            {
                "identityProviderConfigName": name,
                "identityProviderConfigArn": f"arn:aws:eks:{REGION}:{DEFAULT_ACCOUNT}:"
                f"identityproviderconfig/{CLUSTER}/oidc/{name}/0",
                "issuerUrl": f"https://{name}.example.com",
                "clientId": "kubernetes",
                "usernameClaim": "email",
                "groupsClaim": "groups",
                "groupsPrefix": "oidc:",
                "requiredClaims": {"hd": "example.com"},
                "tags": {},
            },
        )
    eks = aws.session().client("eks")

    listed = (
        eks.get_paginator("list_identity_provider_configs")
        .paginate(clusterName=CLUSTER)
        .build_full_result()
    )
    described = eks.describe_identity_provider_config(
        clusterName=CLUSTER, identityProviderConfig={"type": "oidc", "name": "dex"}
    )

    assert listed["identityProviderConfigs"] == [
        {"type": "oidc", "name": n} for n in ("okta", "dex", "keycloak")
    ]
    oidc = described["identityProviderConfig"]["oidc"]
    assert (oidc["issuerUrl"], oidc["status"], oidc["clusterName"]) == (
        "https://dex.example.com",
        "ACTIVE",
        CLUSTER,
    )
    with pytest.raises(ClientError) as missing:
        eks.describe_identity_provider_config(
            clusterName=CLUSTER, identityProviderConfig={"type": "oidc", "name": "absent"}
        )
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_other_eks_calls_are_forwarded_to_moto_per_region(aws: AwsFakes) -> None:
    session = aws.session()
    aws.create_cluster(
        session,
        REGION,
        "east",
        version="1.31",
        resourcesVpcConfig={"endpointPublicAccess": True, "publicAccessCidrs": ["10.0.0.0/8"]},
        accessConfig={"authenticationMode": "API"},
    )
    aws.create_cluster(session, OTHER_REGION, "west", version="1.30")
    east = session.client("eks", region_name=REGION)
    west = session.client("eks", region_name=OTHER_REGION)

    described = east.describe_cluster(name="east")["cluster"]

    assert east.list_clusters()["clusters"] == ["east"]
    assert west.list_clusters()["clusters"] == ["west"]
    assert described["arn"] == f"arn:aws:eks:{REGION}:{DEFAULT_ACCOUNT}:cluster/east"
    assert described["version"] == "1.31"
    assert described["resourcesVpcConfig"]["publicAccessCidrs"] == ["10.0.0.0/8"]
    assert described["resourcesVpcConfig"]["endpointPrivateAccess"] is False
    assert "accessConfig" not in described  # moto drops it (see create_cluster's docstring)
    assert aws.eks_gap.requests_seen("POST", "/clusters") == 2
    assert aws.eks_gap.requests_seen("GET", "/clusters/east") == 1


def test_assumed_role_session_sees_only_its_own_account(aws: AwsFakes) -> None:
    other_account = "210987654321"
    home = aws.session()
    away = aws.session(other_account)
    aws.create_cluster(home, REGION, "home-cluster")
    aws.create_cluster(away, REGION, "away-cluster")

    identity = away.client("sts").get_caller_identity()

    assert identity["Account"] == other_account
    assert home.client("eks").list_clusters()["clusters"] == ["home-cluster"]
    assert away.client("eks").list_clusters()["clusters"] == ["away-cluster"]
    arn = away.client("eks").describe_cluster(name="away-cluster")["cluster"]["arn"]
    assert arn == f"arn:aws:eks:{REGION}:{other_account}:cluster/away-cluster"


def test_throttling_is_retried_by_botocore_then_succeeds(aws: AwsFakes) -> None:
    aws.eks_gap.add_access_entry(REGION, CLUSTER, access_entry("dev"), [])
    path = f"/clusters/{CLUSTER}/access-entries"
    aws.eks_gap.add_fault(
        "GET",
        path,
        429,
        "ThrottlingException",
        "Rate exceeded",
        times=2,
    )
    # Two throttles, then success on the last of three allowed attempts.
    eks = aws.session().client("eks", config=retrying(3))

    response = eks.list_access_entries(clusterName=CLUSTER)

    assert response["accessEntries"] == [principal("dev")]
    assert response["ResponseMetadata"]["RetryAttempts"] == 2
    assert aws.eks_gap.requests_seen("GET", path) == 3


def test_permanent_server_error_surfaces_as_client_error(aws: AwsFakes) -> None:
    # Faults also apply to requests that would otherwise be forwarded to moto.
    aws.eks_gap.add_fault(
        "GET", "/clusters", 500, "ServerException", "Internal failure", headers={"Retry-After": "5"}
    )
    eks = aws.session().client("eks", config=retrying(2))

    with pytest.raises(ClientError) as failure:
        eks.list_clusters()

    assert failure.value.response["Error"] == {
        "Code": "ServerException",
        "Message": "Internal failure",
    }
    assert failure.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "5"
    assert aws.eks_gap.requests_seen("GET", "/clusters") == 2
