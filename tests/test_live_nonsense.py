"""Live APIs that answer nonsense cost only that document or cluster: the local Kubernetes API
server answers bodies of the wrong shape or pages forever, the EKS fake answers ListClusters and
DescribeCluster bodies its model does not define; the other documents and clusters still read."""

import json
import os
import subprocess
import sys
import time

import pytest

from mutguard.models import Status
from mutguard.providers import in_cluster
from mutguard.providers.eks_live import AwsOptions, EksCollector
from mutguard.scan import build_report
from mutguard.sources import RBAC_DOC, WORKLOADS_DOC

from builders import OBSERVED_AT, bootstrap_items, pod
from servers.kube import KubeApiServer

MUTGUARD_SCAN = (sys.executable, "-m", "mutguard.cli", "scan", "--provider", "aws")
MOTO_USER = "arn:aws:sts::123456789012:user/moto"  # whom moto's dummy key signs as
CLUSTER_ROLES = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
AWS_AUTH = "/api/v1/namespaces/kube-system/configmaps/aws-auth"
NONSENSE_LISTS = {
    "an array": ([{"metadata": {"name": "admin"}}], "answered a JSON array, not a list"),
    "items not a list": ({"kind": "ClusterRoleList", "items": {"a": 1}}, "items is a JSON object"),
    "an item not an object": (
        {"kind": "ClusterRoleList", "metadata": {}, "items": [{"metadata": {}}, "admin"]},
        "item 1 of the list is a JSON string, not an object",
    ),
    "continue not a string": (
        {"kind": "ClusterRoleList", "metadata": {"continue": 7}, "items": []},
        "metadata.continue is a JSON number, not a string",
    ),
}


class StaticTokens:
    def token(self):
        return "reader-token"

    def renew(self):
        pass


def serve_cluster(server):
    server.add_token("reader-token", "mutguard", ["mutguard-readers"])
    server.add_list({"kind": "List", "items": list(bootstrap_items())})
    server.add(pod("web-1"))
    return in_cluster.KubeEndpoint(server.url, server.ca_pem, StaticTokens())


@pytest.mark.parametrize("body, reason", NONSENSE_LISTS.values(), ids=NONSENSE_LISTS)
def test_a_list_of_the_wrong_shape_costs_only_its_document(kube_api, body, reason):
    endpoint = serve_cluster(kube_api)
    kube_api.answer_with(CLUSTER_ROLES, body)
    documents, errors = in_cluster.read(endpoint)
    assert list(errors) == [RBAC_DOC]
    assert errors[RBAC_DOC].startswith(f"GET {CLUSTER_ROLES}: ") and reason in errors[RBAC_DOC]
    assert "\n" not in errors[RBAC_DOC]
    assert [item["metadata"]["name"] for item in documents[WORKLOADS_DOC]["items"]] == ["web-1"]


def test_a_repeated_continue_token_ends_the_list_fast_as_incomplete(kube_api):
    endpoint = serve_cluster(kube_api)
    kube_api.repeat_continue_token(CLUSTER_ROLES)
    started = time.monotonic()
    documents, errors = in_cluster.read(endpoint)
    assert time.monotonic() - started < 5
    assert errors == {
        RBAC_DOC: f"GET {CLUSTER_ROLES}: the API server repeated a continue token after 2 pages; "
        "the list is incomplete"
    }
    assert kube_api.requests_seen("GET", CLUSTER_ROLES) == 2
    assert RBAC_DOC not in documents and documents[WORKLOADS_DOC]["items"]


def test_pages_and_items_are_capped(kube_api, monkeypatch):
    endpoint = serve_cluster(kube_api)  # the bootstrap roles take many pages of 2
    monkeypatch.setattr(in_cluster, "MAX_PAGES", 3)
    _, errors = in_cluster.read(endpoint)
    assert errors[RBAC_DOC] == (
        f"GET {CLUSTER_ROLES}: the API server was still paging after 3 pages; "
        "the list is incomplete"
    )
    monkeypatch.setattr(in_cluster, "MAX_PAGES", 10_000)
    monkeypatch.setattr(in_cluster, "MAX_ITEMS", 3)
    _, errors = in_cluster.read(endpoint)
    assert errors[RBAC_DOC] == (
        f"GET {CLUSTER_ROLES}: more than 3 items after 2 pages; the list is incomplete"
    )


def test_a_single_object_answered_as_an_array_is_unreadable(kube_api):
    endpoint = serve_cluster(kube_api)
    kube_api.answer_with(AWS_AUTH, [])
    documents, errors = in_cluster.read(endpoint, objects={"aws-auth.json": AWS_AUTH})
    assert errors == {
        "aws-auth.json": f"GET {AWS_AUTH}: the API server answered a JSON array, not an object"
    }
    assert RBAC_DOC in documents


@pytest.fixture
def two_clusters(aws, kube_api, test_ca):
    """EKS clusters `web` and `shop` in us-east-1, each with an API server of its own."""
    with KubeApiServer(test_ca) as shop_api:
        for name, server in (("web", kube_api), ("shop", shop_api)):
            aws.create_cluster(aws.session(), "us-east-1", name, version="1.34")
            aws.eks_gap.set_cluster_endpoint("us-east-1", name, server.url, server.ca_pem)
            server.sts_url, server.cluster_name = aws.moto.url, name
            server.add_iam_identity(MOTO_USER, "mutguard", ["mutguard-readers"])
            server.add_list({"kind": "List", "items": list(bootstrap_items())})
        yield aws


def by_name(report):
    return {cluster.name: cluster for cluster in report.clusters}


def result(cluster, check_id):
    return next(f for f in cluster.findings if f.check_id == check_id)


def cli_scan(aws, *options):
    done = subprocess.run(
        [*MUTGUARD_SCAN, *options, "--regions", "us-east-1,eu-west-1", "--format", "json"],
        env={**os.environ, **aws.env},
        capture_output=True,
        text=True,
    )
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def test_a_cluster_answering_nonsense_costs_only_its_rbac(two_clusters, kube_api):
    kube_api.answer_with(CLUSTER_ROLES, [])
    kube_api.repeat_continue_token("/api/v1/pods")
    items = list(EksCollector(AwsOptions(regions=("us-east-1",))).collect())
    clusters = by_name(build_report(items, OBSERVED_AT))
    rbac = result(clusters["web"], "rbac.anonymous_admin")
    assert rbac.status is Status.UNKNOWN and CLUSTER_ROLES in rbac.detail
    assert (
        "repeated a continue token after 2 pages"
        in result(clusters["web"], "workloads.node_escape").detail
    )
    assert clusters["web"].mut is not None and "mut" in clusters["web"].mut_upper_bound
    assert clusters["shop"].errors == []
    assert result(clusters["shop"], "rbac.anonymous_admin").status is Status.PASS

    web = next(c for c in cli_scan(two_clusters)["clusters"] if c["name"] == "web")
    assert any(CLUSTER_ROLES in error and "JSON array" in error for error in web["errors"])


@pytest.fixture
def fleet(aws):
    """`web` in us-east-1, `payments` and `ledger` in eu-west-1."""
    aws.create_cluster(aws.session(), "us-east-1", "web", version="1.34")
    aws.create_cluster(aws.session(), "eu-west-1", "payments", version="1.34")
    aws.create_cluster(aws.session(), "eu-west-1", "ledger", version="1.34")
    return aws


def eks_scan():
    options = AwsOptions(regions=("us-east-1", "eu-west-1"), in_cluster=False)
    return build_report(list(EksCollector(options).collect()), OBSERVED_AT)


@pytest.mark.parametrize(
    "body",
    [{"clusters": 5}, ["payments"], "payments", {"clusters": [7]}, {"clusters": "payments"}],
)
def test_a_list_clusters_answer_of_the_wrong_shape_names_the_region(fleet, body):
    fleet.eks_gap.add_malformed_answer("GET", "/clusters", body, region="eu-west-1")
    report = eks_scan()
    assert [c.name for c in report.clusters] == ["web"]
    (error,) = report.errors
    assert error.scope == "eks:123456789012:eu-west-1"
    assert error.message.startswith("eks:ListClusters: the answer is not what the EKS API defines")


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"cluster": "payments"}, "the answer is not what the EKS API defines"),
        ({"cluster": {"name": "payments", "resourcesVpcConfig": [1]}}, "is not what the EKS"),
        ([], "the answer is not what the EKS API defines"),
        ({}, "the answer holds no cluster"),
    ],
)
def test_a_describe_cluster_answer_of_the_wrong_shape_names_the_cluster(fleet, body, reason):
    fleet.eks_gap.add_malformed_answer("GET", "/clusters/payments", body)
    clusters = by_name(eks_scan())
    payments = clusters["payments"]
    assert payments.mut is None and payments.location == "eu-west-1"
    assert payments.errors[0].startswith("eks:DescribeCluster payments: ")
    assert reason in payments.errors[0]
    assert (clusters["web"].errors, clusters["ledger"].errors) == ([], [])


# The types are those of the EKS API model (botocore's data/eks/.../service-2.json):
# resourcesVpcConfig.subnetIds is a StringList, tags a TagMap of strings, logging.clusterLogging
# a list of LogSetup objects whose `enabled` is a BoxedBoolean.
@pytest.mark.parametrize(
    "cluster, where",
    [
        (
            {"resourcesVpcConfig": {"subnetIds": "subnet-1"}},
            "cluster.resourcesVpcConfig.subnetIds must be a list, not a string",
        ),
        (
            {"resourcesVpcConfig": {"subnetIds": ["subnet-1", 7]}},
            "cluster.resourcesVpcConfig.subnetIds[1] must be a string, not a number",
        ),
        ({"tags": {"team": "shop", "cost": 5}}, "cluster.tags.cost must be a string, not a number"),
        (
            {"logging": {"clusterLogging": [{"types": ["api"], "enabled": "yes"}]}},
            "cluster.logging.clusterLogging[0].enabled must be a boolean, not a string",
        ),
        ({"version": True}, "cluster.version must be a string, not a boolean"),
    ],
)
def test_a_field_of_the_wrong_type_is_named_by_its_path(fleet, cluster, where):
    body = {"cluster": {"name": "payments", **cluster}}
    fleet.eks_gap.add_malformed_answer("GET", "/clusters/payments", body)
    payments = by_name(eks_scan())["payments"]
    assert payments.errors == [
        f"eks:DescribeCluster payments: the answer is not what the EKS API defines "
        f"(ValueError: {where})"
    ]


def test_the_cli_names_malformed_eks_answers_without_a_traceback(fleet):
    fleet.eks_gap.add_malformed_answer("GET", "/clusters", {"clusters": 5}, region="eu-west-1")
    fleet.eks_gap.add_malformed_answer("GET", "/clusters/web", {"cluster": "web"})
    fleet.create_cluster(fleet.session(), "us-east-1", "api", version="1.34")
    answer = cli_scan(fleet, "--skip-in-cluster")  # moto's endpoints must never be dialled
    assert [e["scope"] for e in answer["errors"]] == ["eks:123456789012:eu-west-1"]
    clusters = {c["name"]: c for c in answer["clusters"]}
    assert clusters["web"]["errors"][0].startswith("eks:DescribeCluster web: the answer is not")
    assert clusters["api"]["mut"] is not None
