"""In-cluster reads end to end: boto3 against moto for EKS, an EKS token minted in memory and
checked against moto's STS by the local HTTPS Kubernetes API server, which serves RBAC and
workloads to the real `kubernetes` client with the cluster CA from DescribeCluster."""

import pytest

from mutguard.models import Status
from mutguard.providers import in_cluster
from mutguard.providers.eks_live import AwsOptions, EksCollector
from mutguard.scan import build_report

from builders import OBSERVED_AT, bootstrap_items, cluster_role_binding, namespace, pod

MOTO_USER = "arn:aws:sts::123456789012:user/moto"  # whom moto's dummy key signs as


@pytest.fixture
def cluster_api(aws, kube_api):
    """EKS cluster `web` (1.31, public) whose API server is the local fake."""
    aws.create_cluster(aws.session(), "us-east-1", "web", version="1.31")
    aws.eks_gap.set_cluster_endpoint("us-east-1", "web", kube_api.url, kube_api.ca_pem)
    kube_api.sts_url = aws.moto.url
    kube_api.cluster_name = "web"
    kube_api.add_iam_identity(MOTO_USER, "mutguard", ["mutguard-readers"])
    kube_api.add_list({"kind": "List", "items": list(bootstrap_items())})
    return kube_api


def scan():
    items = list(EksCollector(AwsOptions(regions=("us-east-1",))).collect())
    (cluster,) = build_report(items, OBSERVED_AT).clusters
    return cluster


def result(cluster, check_id):
    return next(f for f in cluster.findings if f.check_id == check_id)


def test_seed_anonymous_cluster_admin_read_live(cluster_api):
    cluster_api.add(
        cluster_role_binding("anon-admin", "cluster-admin", ("Group", "system:unauthenticated"))
    )
    cluster_api.add(pod("web-1"))
    cluster_api.add(namespace("shop"))
    cluster = scan()
    assert cluster.errors == []
    assert cluster.mut == 0
    assert result(cluster, "rbac.anonymous_admin").status is Status.FAIL
    assert "mut" not in cluster.mut_upper_bound
    assert [b.workload for b in cluster.blast_radius] == ["shop/web-1"]
    # Read-only, as the scanner's own identity, and the probe went out without credentials.
    assert cluster_api.requests_seen("*", ".*") == cluster_api.requests_seen("GET", ".*")
    assert "mutguard" in cluster_api.identities_seen()


def test_default_rbac_read_live_is_mut_one(cluster_api):
    cluster = scan()
    assert (cluster.mut, result(cluster, "rbac.anonymous_admin").status) == (1, Status.PASS)


def test_anonymous_off_by_probe(cluster_api):
    cluster_api.anonymous = "disabled"
    cluster = scan()
    assert result(cluster, "eks.auth.anonymous").detail.endswith("(probe)")
    assert cluster.mut == 2


def test_forbidden_resource_is_unknown_naming_the_permission(cluster_api):
    cluster_api.forbid("mutguard", "roles.rbac.authorization.k8s.io")
    cluster = scan()
    rbac = result(cluster, "rbac.anonymous_admin")
    assert (
        rbac.status is Status.UNKNOWN and "403 Forbidden" in rbac.detail and "roles" in rbac.detail
    )
    assert result(cluster, "workloads.node_escape").status is Status.PASS  # the rest was read


def test_token_for_another_cluster_is_unauthorized_not_a_crash(cluster_api):
    cluster_api.cluster_name = "another-cluster"  # a token for `web` is refused here
    cluster = scan()
    rbac = result(cluster, "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN and "401 Unauthorized" in rbac.detail
    assert cluster.mut is not None


def test_unreachable_private_endpoint_is_unknown(aws, test_ca):
    from servers.ports import free_port

    aws.create_cluster(aws.session(), "us-east-1", "private", version="1.33")
    url = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    aws.eks_gap.set_cluster_endpoint("us-east-1", "private", url, test_ca.ca_pem)
    cluster = scan()
    assert "not reachable" in result(cluster, "rbac.anonymous_admin").detail
    assert cluster.mut is not None


class ExpiringTokens:
    """Tokens the API server honours for a few requests each: what a scan meets mid-way."""

    def __init__(self, server, lifetime):
        self.server, self.lifetime, self.minted = server, lifetime, 0
        self.renew()

    def token(self):
        return f"token-{self.minted}"

    def renew(self):
        self.minted += 1
        self.server.add_token(
            self.token(), "mutguard", ["mutguard-readers"], expires_after=self.lifetime
        )


def test_a_token_expiring_mid_scan_is_renewed(kube_api):
    kube_api.add_list({"kind": "List", "items": list(bootstrap_items())})
    tokens = ExpiringTokens(kube_api, lifetime=3)
    documents, errors = in_cluster.read(
        in_cluster.KubeEndpoint(kube_api.url, kube_api.ca_pem, tokens)
    )
    assert errors == {}
    assert tokens.minted > 2
    assert len(documents["rbac.json"]["items"]) == len(bootstrap_items())


def test_tls_is_verified_against_the_cluster_ca(kube_api):
    from servers.tls import TestCa

    other_ca = TestCa()
    tokens = ExpiringTokens(kube_api, lifetime=None)
    documents, errors = in_cluster.read(
        in_cluster.KubeEndpoint(kube_api.url, other_ca.ca_pem, tokens)
    )
    assert documents == {}
    assert set(errors.values()) == {"TLS verification against the cluster CA failed"}


def test_aws_auth_is_read_live(cluster_api):
    cluster = scan()
    assert result(cluster, "eks.access.aws_auth_masters").status is Status.PASS  # no ConfigMap
    cluster_api.add(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "aws-auth", "namespace": "kube-system"},
            "data": {
                "mapUsers": "- userarn: arn:aws:iam::123456789012:user/admin\n"
                "  groups: [system:masters]\n"
            },
        }
    )
    cluster = scan()
    masters = result(cluster, "eks.access.aws_auth_masters")
    assert masters.status is Status.FAIL and masters.resource.endswith(":user/admin")


def test_a_ca_that_is_not_pem_is_never_dialled(aws, kube_api):
    aws.create_cluster(aws.session(), "us-east-1", "odd", version="1.33")
    aws.eks_gap.set_cluster_endpoint("us-east-1", "odd", kube_api.url, b"\xd5 not a certificate")
    cluster = scan()
    assert "not a PEM certificate" in result(cluster, "rbac.anonymous_admin").detail
    assert kube_api.requests_seen("*", ".*") == 0
