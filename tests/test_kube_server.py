"""KubeApiServer speaks the real wire format: every call goes through the real `kubernetes` client.

The client is configured in memory only: the CA as PEM text (`ca_cert_data`: a str is PEM, bytes
would be read as DER), the bearer token in `api_key`, no kubeconfig, no files.
"""

import base64
import http.client
import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from servers.aws import DEFAULT_ACCOUNT, AwsFakes
from servers.kube import KubeApiServer
from servers.tls import TestCa

RBAC_FIXTURES = Path(__file__).parent / "fixtures" / "kubernetes-bootstrap-rbac"
# The featuregates variants redefine the same roles; one policy is these four files.
RBAC_FILES = ("cluster-roles", "controller-roles", "cluster-role-bindings", "namespace-roles")
TOKEN = "alice-token"
CLUSTER = "prod"


def rbac_fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((RBAC_FIXTURES / f"{name}.yaml").read_text())
    return document


def configuration(kube: KubeApiServer, ca: TestCa, token: str | None) -> client.Configuration:
    config = client.Configuration(host=kube.url, ca_cert_data=ca.ca_pem.decode("ascii"))
    if token is not None:
        # auth_settings() sends api_key["BearerToken"] (alias "authorization") as the
        # `authorization` header, prefixed by api_key_prefix["BearerToken"] if set.
        config.api_key = {"BearerToken": token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
    config.proxy = None  # not one picked up from HTTPS_PROXY: this is 127.0.0.1
    config.retries = False
    return config


@pytest.fixture
def api(kube_api: KubeApiServer, test_ca: TestCa) -> Iterator[client.ApiClient]:
    """A client authenticated as alice (group "devs")."""
    kube_api.add_token(TOKEN, "alice", ["devs"])
    with client.ApiClient(configuration(kube_api, test_ca, TOKEN)) as api_client:
        yield api_client


@pytest.fixture
def anonymous(kube_api: KubeApiServer, test_ca: TestCa) -> Iterator[client.ApiClient]:
    with client.ApiClient(configuration(kube_api, test_ca, None)) as api_client:
        yield api_client


def status_of(err: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(err.body)
    return body


def pod(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
    }


def test_clusterroles_page_through_the_whole_bootstrap_policy(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    for name in RBAC_FILES:
        kube_api.add_list(rbac_fixture(name))
    expected = sorted(
        item["metadata"]["name"]
        for name in ("cluster-roles", "controller-roles")
        for item in rbac_fixture(name)["items"]
    )
    rbac = client.RbacAuthorizationV1Api(api)

    names: list[str] = []
    pages: list[client.V1ClusterRoleList] = []
    token = None
    while True:
        page = rbac.list_cluster_role(limit=50, _continue=token)  # the server caps pages at 2
        pages.append(page)
        names += [role.metadata.name for role in page.items]
        token = page.metadata._continue
        if not token:
            break

    assert names == expected  # etcd key order, each role once
    assert len(pages) == (len(expected) + 1) // 2
    path = "/apis/rbac.authorization.k8s.io/v1/clusterroles"
    assert kube_api.requests_seen("GET", path) == len(pages)
    assert [p.metadata.remaining_item_count for p in pages[:2]] == [
        len(expected) - 2,
        len(expected) - 4,
    ]
    assert pages[-1].metadata.remaining_item_count is None
    assert {p.metadata.resource_version for p in pages} == {pages[0].metadata.resource_version}
    # Like kube-apiserver, items of a typed list carry no kind/apiVersion; the list does.
    assert pages[0].kind == "ClusterRoleList"
    assert pages[0].api_version == "rbac.authorization.k8s.io/v1"
    assert pages[0].items[0].kind is None
    admin = rbac.read_cluster_role("cluster-admin")
    assert admin.kind == "ClusterRole"
    assert admin.rules[0].verbs == ["*"]
    # Without a limit, one answer holds everything.
    assert len(rbac.list_cluster_role().items) == len(expected)
    bindings = rbac.list_cluster_role_binding()
    assert len(bindings.items) == len(rbac_fixture("cluster-role-bindings")["items"])
    # Namespaced kinds: across namespaces and in one.
    roles = rbac.list_role_for_all_namespaces().items
    assert len(roles) == len(rbac_fixture("namespace-roles")["items"])
    in_kube_system = rbac.list_namespaced_role("kube-system").items
    assert in_kube_system
    assert {r.metadata.namespace for r in in_kube_system} == {"kube-system"}


def test_pods_across_namespaces_and_the_raw_list_format(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    for namespace in ("team-b", "team-a", "team-a-b"):
        kube_api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for namespace, name in [("team-b", "web"), ("team-a", "db"), ("team-a", "api")]:
        kube_api.add(pod(namespace, name))
    kube_api.add(pod("team-a-b", "worker"))
    core = client.CoreV1Api(api)

    first = core.list_pod_for_all_namespaces(limit=3)
    rest = core.list_pod_for_all_namespaces(limit=3, _continue=first.metadata._continue)

    # Keys sort as etcd's "namespace/name" strings: "team-a-b/..." before "team-a/...".
    listed = [(p.metadata.namespace, p.metadata.name) for p in first.items + rest.items]
    assert listed == [
        ("team-a-b", "worker"),
        ("team-a", "api"),
        ("team-a", "db"),
        ("team-b", "web"),
    ]
    assert [p.metadata.name for p in core.list_namespaced_pod("team-a").items] == ["api", "db"]
    assert [n.metadata.name for n in core.list_namespace().items] == [
        "team-a",
        "team-a-b",
        "team-b",
    ]
    web = core.read_namespaced_pod("web", "team-b")
    assert web.kind == "Pod"
    assert web.spec.containers[0].image == "nginx:1.27"
    assert web.metadata.uid
    assert core.read_namespace("team-b").kind == "Namespace"

    raw = core.list_namespaced_pod("team-a", limit=1, _preload_content=False)
    body = json.loads(raw.data)
    assert body["kind"] == "PodList"
    assert body["apiVersion"] == "v1"
    assert set(body["metadata"]) == {"resourceVersion", "continue", "remainingItemCount"}
    assert body["metadata"]["remainingItemCount"] == 1
    assert "kind" not in body["items"][0]
    assert "apiVersion" not in body["items"][0]

    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod("gone", "team-b")
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'pods "gone" not found'


def test_continue_tokens_read_a_snapshot_until_they_expire(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    for name in ("a", "b", "c", "d"):
        kube_api.add(pod("default", name))
    core = client.CoreV1Api(api)
    first = core.list_namespaced_pod("default", limit=2)

    kube_api.remove("Pod", "c", "default")
    kube_api.add(pod("default", "e"))

    # The continued list is consistent with the first page: c still there, e not yet.
    second = core.list_namespaced_pod("default", limit=2, _continue=first.metadata._continue)
    assert [p.metadata.name for p in second.items] == ["c", "d"]
    assert second.metadata.resource_version == first.metadata.resource_version
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == [
        "a",
        "b",
        "d",
        "e",
    ]

    kube_api.expire_continue_tokens()
    with pytest.raises(ApiException) as expired:
        core.list_namespaced_pod("default", limit=2, _continue=first.metadata._continue)
    assert expired.value.status == 410
    assert status_of(expired.value)["reason"] == "Expired"
    with pytest.raises(ApiException) as malformed:
        core.list_namespaced_pod("default", limit=2, _continue="not-a-token")
    assert malformed.value.status == 400  # what kube-apiserver answers to a token it can't read
    assert status_of(malformed.value)["message"].startswith("invalid continue token")


def test_no_token_is_401_when_anonymous_auth_is_disabled(
    kube_api: KubeApiServer, anonymous: client.ApiClient
) -> None:
    kube_api.anonymous = "disabled"

    for call in (
        client.CoreV1Api(anonymous).list_namespace,
        client.VersionApi(anonymous).get_code,
        client.CoreApi(anonymous).get_api_versions,
    ):
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 401
        assert status_of(refused.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
    assert kube_api.identities_seen() == []


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # GET without credentials -> status, for /version, /api, /healthz
        ("enabled", (200, 403, 200)),
        ("health-only", (401, 401, 200)),
        ("disabled", (401, 401, 401)),
    ],
)
def test_discovery_without_credentials_per_anonymous_mode(
    kube_api: KubeApiServer,
    test_ca: TestCa,
    anonymous: client.ApiClient,
    mode: Any,
    expected: tuple[int, int, int],
) -> None:
    kube_api.anonymous = mode

    def status(call: Any) -> int:
        try:
            call()
        except ApiException as err:
            return int(err.status)
        return 200

    version = status(client.VersionApi(anonymous).get_code)
    api_versions = status(client.CoreApi(anonymous).get_api_versions)
    # Health endpoints through plain http.client, with the CA's own client context.
    conn = http.client.HTTPSConnection(
        "127.0.0.1", int(kube_api.url.rsplit(":", 1)[1]), context=test_ca.client_context()
    )
    try:
        conn.request("GET", "/healthz")
        healthz = conn.getresponse()
        healthz.read()
    finally:
        conn.close()
    assert (version, api_versions, healthz.status) == expected


def test_discovery_answers_and_anonymous_grants(
    kube_api: KubeApiServer, api: client.ApiClient, anonymous: client.ApiClient
) -> None:
    version = client.VersionApi(anonymous).get_code()
    assert (version.major, version.git_version) == ("1", "v1.31.2-eks-7f9249a")
    assert version.platform == "linux/amd64"
    with pytest.raises(ApiException) as denied:
        client.CoreApi(anonymous).get_api_versions()
    assert status_of(denied.value)["message"] == (
        'forbidden: User "system:anonymous" cannot get path "/api/"'  # the client adds the "/"
    )

    kube_api.allow_anonymous("/api")  # as a binding of system:discovery to anonymous would
    assert client.CoreApi(anonymous).get_api_versions().versions == ["v1"]
    with pytest.raises(ApiException) as still_denied:
        client.ApisApi(anonymous).get_api_versions()  # "/api" does not cover "/apis"
    assert still_denied.value.status == 403

    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"rbac.authorization.k8s.io", "apps", "admissionregistration.k8s.io"} <= groups
    resources = client.RbacAuthorizationV1Api(api).get_api_resources().resources
    assert {r.name for r in resources} == {
        "clusterroles",
        "clusterrolebindings",
        "roles",
        "rolebindings",
    }
    assert kube_api.identities_seen() == ["system:anonymous", "alice"]


def test_forbidden_resource_is_an_api_exception_403(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    kube_api.forbid("devs", "pods")
    kube_api.forbid("alice", "clusterroles.rbac.authorization.k8s.io")
    kube_api.add(pod("default", "web"))

    with pytest.raises(ApiException) as all_pods:
        client.CoreV1Api(api).list_pod_for_all_namespaces()
    assert all_pods.value.status == 403
    assert status_of(all_pods.value)["reason"] == "Forbidden"
    assert status_of(all_pods.value)["message"] == (
        'pods is forbidden: User "alice" cannot list resource "pods" in API group "" at the '
        "cluster scope"
    )
    with pytest.raises(ApiException) as one_pod:
        client.CoreV1Api(api).read_namespaced_pod("web", "default")
    assert status_of(one_pod.value)["message"] == (
        'pods "web" is forbidden: User "alice" cannot get resource "pods" in API group "" in '
        'the namespace "default"'
    )
    with pytest.raises(ApiException) as roles:
        client.RbacAuthorizationV1Api(api).list_cluster_role()
    assert status_of(roles.value)["message"] == (
        'clusterroles.rbac.authorization.k8s.io is forbidden: User "alice" cannot list resource '
        '"clusterroles" in API group "rbac.authorization.k8s.io" at the cluster scope'
    )
    assert status_of(roles.value)["details"] == {
        "group": "rbac.authorization.k8s.io",
        "kind": "clusterroles",
    }
    # Everything else stays readable.
    assert client.RbacAuthorizationV1Api(api).list_cluster_role_binding().items == []


def test_token_expiring_mid_scan_turns_into_401(kube_api: KubeApiServer, test_ca: TestCa) -> None:
    kube_api.add_list(rbac_fixture("cluster-role-bindings"))  # 10 bindings: 5 pages of 2
    kube_api.add_token("short-lived", "scanner", expires_after=3)
    config = client.Configuration(
        host=kube_api.url,
        # The other accepted form: the whole header value under the "authorization" alias.
        api_key={"authorization": "Bearer short-lived"},
        ca_cert_data=test_ca.ca_pem.decode("ascii"),
    )
    config.proxy = None
    with client.ApiClient(config) as api_client:
        rbac = client.RbacAuthorizationV1Api(api_client)
        token = None
        for _ in range(3):
            token = rbac.list_cluster_role_binding(limit=2, _continue=token).metadata._continue
        with pytest.raises(ApiException) as expired:
            rbac.list_cluster_role_binding(limit=2, _continue=token)
    assert expired.value.status == 401
    assert kube_api.auth_failures() == ["token of scanner has expired"]


def mint_eks_token(sts: Any, cluster: str) -> str:
    """What `aws eks get-token` and aws-iam-authenticator send: a presigned GetCallerIdentity."""

    def sign_cluster_name(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", sign_cluster_name)
    url = sts.generate_presigned_url(
        "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
    )
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def eks_client(kube: KubeApiServer, ca: TestCa, token: str) -> client.ApiClient:
    return client.ApiClient(configuration(kube, ca, token))


def test_eks_tokens_are_checked_against_moto_sts(
    kube_api: KubeApiServer, test_ca: TestCa, aws: AwsFakes
) -> None:
    kube_api.sts_url = aws.moto.url
    kube_api.cluster_name = CLUSTER
    # moto's identity for its dummy key, and a role (with a path) assumed in another account.
    kube_api.add_iam_identity(f"arn:aws:sts::{DEFAULT_ACCOUNT}:user/moto", "moto-admin")
    kube_api.add_iam_identity(
        "arn:aws:iam::111122223333:role/team/reader", "reader:{{SessionName}}", ["readers"]
    )
    kube_api.forbid("readers", "namespaces")
    base = aws.session()
    credentials = base.client("sts").assume_role(
        RoleArn="arn:aws:iam::111122223333:role/team/reader", RoleSessionName="nightly"
    )["Credentials"]
    kube_api.add_aws_secret(credentials["AccessKeyId"], credentials["SecretAccessKey"])
    reader = aws.session().client(
        "sts",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )

    with eks_client(kube_api, test_ca, mint_eks_token(base.client("sts"), CLUSTER)) as admin:
        assert client.CoreV1Api(admin).list_namespace().items == []
    with (
        eks_client(kube_api, test_ca, mint_eks_token(reader, CLUSTER)) as as_reader,
        pytest.raises(ApiException) as denied,
    ):
        client.CoreV1Api(as_reader).list_namespace()
    assert 'User "reader:nightly"' in status_of(denied.value)["message"]
    assert kube_api.identities_seen() == ["moto-admin", "reader:nightly"]
    assert kube_api.auth_failures() == []


def test_eks_tokens_for_another_cluster_or_identity_are_refused(
    kube_api: KubeApiServer, test_ca: TestCa, aws: AwsFakes
) -> None:
    kube_api.sts_url = aws.moto.url
    kube_api.cluster_name = CLUSTER
    sts = aws.session().client("sts")
    good = mint_eks_token(sts, CLUSTER)
    other_cluster = mint_eks_token(aws.session().client("sts"), "staging")
    url = base64.urlsafe_b64decode(good.removeprefix("k8s-aws-v1.") + "==").decode()
    elsewhere = url.replace(aws.moto.url, aws.eks_gap.url)
    foreign = "k8s-aws-v1." + base64.urlsafe_b64encode(elsewhere.encode()).decode().rstrip("=")

    statuses = []
    for token in (other_cluster, good, foreign):  # `good`, but nobody is mapped yet
        with eks_client(kube_api, test_ca, token) as api_client:
            try:
                client.CoreV1Api(api_client).list_namespace()
            except ApiException as err:
                statuses.append(err.status)
    assert statuses == [401, 401, 401]
    failures = kube_api.auth_failures()
    assert "SignatureDoesNotMatch" in failures[0]
    assert failures[1] == f"ARN is not mapped: arn:aws:sts::{DEFAULT_ACCOUNT}:user/moto"
    assert failures[2].startswith("unexpected host")
    assert kube_api.identities_seen() == []


def test_writes_are_refused_and_recorded(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    namespace = client.V1Namespace(metadata=client.V1ObjectMeta(name="intruder"))

    with pytest.raises(ApiException) as refused:
        core.create_namespace(namespace)

    assert refused.value.status == 405
    assert status_of(refused.value)["reason"] == "MethodNotAllowed"
    assert kube_api.requests_seen("POST", "/api/v1/namespaces") == 1
    assert kube_api.requests_seen("GET", ".*") == 0
    assert kube_api.identities_seen() == ["alice"]
    assert core.list_namespace().items == []


def test_the_certificate_verifies_only_against_its_own_ca(
    kube_api: KubeApiServer, test_ca: TestCa
) -> None:
    port = int(kube_api.url.rsplit(":", 1)[1])
    for host in ("127.0.0.1", "localhost"):
        conn = http.client.HTTPSConnection(host, port, context=test_ca.client_context())
        try:
            conn.request("GET", "/livez")
            assert conn.getresponse().read() == b"ok"
        finally:
            conn.close()
    stranger = http.client.HTTPSConnection("127.0.0.1", port, context=TestCa().client_context())
    try:
        with pytest.raises(ssl.SSLCertVerificationError):
            stranger.request("GET", "/livez")
    finally:
        stranger.close()
