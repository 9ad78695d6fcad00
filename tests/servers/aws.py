"""AWS test environment: moto_server for most services, EksGapServer in front of it for EKS."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from .eks_gap import EksGapServer
from .moto import MotoServer

DEFAULT_ACCOUNT = "123456789012"  # the account moto gives any unrecognised access key
DEFAULT_REGION = "us-east-1"
TEST_ROLE = "mutguard-test"
DUMMY_KEY = "testing"

# What real EKS reports for settings that create_cluster omits. moto stores resourcesVpcConfig
# exactly as sent, so without these a describe_cluster would lack keys that AWS always returns.
_VPC_DEFAULTS: dict[str, Any] = {
    "subnetIds": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
    "securityGroupIds": [],
    "endpointPublicAccess": True,
    "endpointPrivateAccess": False,
    "publicAccessCidrs": ["0.0.0.0/0"],
}


def aws_env(moto_url: str, eks_url: str, config_dir: Path) -> dict[str, str]:
    """Environment that points botocore at the fakes and nowhere else.

    Empty config and credentials files keep the developer's own profiles out. The dummy keys
    are moto's conventional ones, not secrets.
    """
    config_file = config_dir / "aws-config"
    credentials_file = config_dir / "aws-credentials"
    config_file.write_text("")
    credentials_file.write_text("")
    return {
        "AWS_ACCESS_KEY_ID": DUMMY_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_KEY,
        "AWS_DEFAULT_REGION": DEFAULT_REGION,
        # botocore (>= 1.31) uses AWS_ENDPOINT_URL for every service unless a per-service
        # variable such as AWS_ENDPOINT_URL_EKS overrides it.
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_ENDPOINT_URL_EKS": eks_url,
        "AWS_CONFIG_FILE": str(config_file),
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file),
        "AWS_EC2_METADATA_DISABLED": "true",
        # A proxy configured on the machine must never see requests meant for 127.0.0.1.
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def create_cluster(session: boto3.Session, region: str, name: str, **kwargs: Any) -> dict[str, Any]:
    """Create an EKS cluster through boto3 and return the `cluster` moto answered with.

    kwargs are create_cluster parameters (version, resourcesVpcConfig, encryptionConfig,
    logging, accessConfig, tags, kubernetesNetworkConfig, ...). roleArn defaults to a role in
    the session's account; resourcesVpcConfig gets AWS's defaults for the keys it lacks.

    What moto 5.2.5 keeps and returns from describe_cluster: name, arn, version (default
    "1.19": pass a current one), roleArn, resourcesVpcConfig (verbatim, so no vpcId or
    clusterSecurityGroupId), kubernetesNetworkConfig (default serviceIpv4Cidr 172.20.0.0/16),
    logging (default: all five types disabled), encryptionConfig (default []), tags,
    remoteNetworkConfig, clientRequestToken, plus generated createdAt, status "ACTIVE",
    platformVersion "eks.4", certificateAuthority, endpoint and identity.oidc.issuer (both fake
    amazonaws.com names, the same for every cluster of a region). Silently dropped:
    accessConfig, upgradePolicy, zonalShiftConfig, computeConfig, storageConfig,
    bootstrapSelfManagedAddons, outpostConfig and every other parameter.
    """
    eks = session.client("eks", region_name=region)
    if "roleArn" not in kwargs:
        account = session.client("sts", region_name=region).get_caller_identity()["Account"]
        kwargs["roleArn"] = f"arn:aws:iam::{account}:role/mutguard-eks-cluster"
    kwargs["resourcesVpcConfig"] = {**_VPC_DEFAULTS, **kwargs.get("resourcesVpcConfig", {})}
    cluster: dict[str, Any] = eks.create_cluster(name=name, **kwargs)["cluster"]
    return cluster


@dataclass
class AwsFakes:
    """What the `aws` fixture yields: the servers, their environment and session helpers."""

    moto: MotoServer
    eks_gap: EksGapServer
    env: dict[str, str]  # also meant for subprocesses: {**os.environ, **aws.env}

    create_cluster = staticmethod(create_cluster)

    def session(self, account: str | None = None) -> boto3.Session:
        """A session in moto's default account, or in `account` through sts:AssumeRole.

        moto attributes resources created with assumed-role credentials to the role's account,
        so each account sees only its own clusters. Credentials stay in memory.
        """
        base = boto3.Session()
        if account is None or account == DEFAULT_ACCOUNT:
            return base
        credentials = base.client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/{TEST_ROLE}", RoleSessionName=TEST_ROLE
        )["Credentials"]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
