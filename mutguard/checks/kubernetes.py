"""Checks of a self-managed cluster read through a kubeconfig (provider `kubernetes`).

Without a cloud API there is no control-plane configuration to read: what the API server
answers is all there is. Anonymous authentication shows in the probe. The API server's network
exposure does not show from inside the cluster or from a kubeconfig: the address a kubeconfig
names is where this scanner reaches the server, not every address it listens on, nor what a
firewall, NAT or load balancer in front of it lets through. So that barrier stays UNKNOWN, MUT
assumes it holds, and `mut` is an upper bound.
"""

from __future__ import annotations

import ipaddress

from mutguard.checks import check, unknown
from mutguard.checks.common import probed_anonymous
from mutguard.models import Area, Maturity, Provider, Remediation, Severity
from mutguard.mut import StartKind
from mutguard.providers.kubernetes import KubernetesCluster
from mutguard.sources import PROBE_DOC

KUBERNETES = (Provider.KUBERNETES,)
DOCS = "https://kubernetes.io/docs"
APISERVER_FLAGS = f"{DOCS}/reference/command-line-tools-reference/kube-apiserver/"
CONTROLLING_ACCESS = f"{DOCS}/concepts/security/controlling-access/"
ANONYMOUS_REQUESTS = f"{DOCS}/reference/access-authn-authz/authentication/#anonymous-requests"


@check(
    id="kubernetes.endpoint.exposure",
    title="API server is not open to the whole internet",
    severity=Severity.CRITICAL,
    area=Area.NETWORK,
    maturity=Maturity.CRAWL,
    providers=KUBERNETES,
    rationale="An API server anyone on the internet can reach removes the network barrier: "
    "every leaked credential or RBAC mistake is then exploitable from anywhere. A self-managed "
    "API server's exposure is set outside Kubernetes (the interfaces it binds, firewalls, load "
    "balancers), where mutguard cannot read it, so this check can only state the assumption.",
    remediation={
        Provider.KUBERNETES: Remediation(
            summary="Let only admin and node networks reach the secure port (kube-apiserver "
            "--secure-port, default 6443, served on --bind-address): a firewall or security "
            "group in front of it, or --bind-address on a private interface.",
            terraform="the rule in front of it, e.g. aws_security_group ingress cidr_blocks, "
            "google_compute_firewall source_ranges or azurerm_network_security_rule "
            "source_address_prefix",
        )
    },
    references=[CONTROLLING_ACCESS, APISERVER_FLAGS],
)
def endpoint_exposure(cluster: KubernetesCluster):
    return unknown(
        f"{_address_note(cluster.server_host())}; who else can reach the API server is set by "
        "its interfaces, firewalls and load balancers, which mutguard cannot read",
        assumption="network: the API server is assumed not open to the internet (not readable "
        "for a self-managed cluster)",
        affects=[StartKind.INTERNET, StartKind.CREDENTIAL],
    )


def _address_note(host: str) -> str:
    """What the kubeconfig's server address says about exposure, which is never enough."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"the kubeconfig names the API server by host name {host!r}"
    if address.is_loopback:
        return (
            f"the kubeconfig reaches the API server on a loopback address ({host}), from its own "
            "host or through a tunnel, which says nothing of the other addresses it listens on"
        )
    if not address.is_global:  # RFC 1918, link-local, CGNAT and other non-public ranges
        return (
            f"the kubeconfig reaches the API server on a non-public address ({host}), but a NAT, "
            "load balancer or another interface may still expose it"
        )
    return (
        f"the kubeconfig reaches the API server on a public address ({host}); a firewall may "
        "still restrict who can connect"
    )


@check(
    id="kubernetes.auth.anonymous",
    title="Anonymous requests are not authenticated",
    severity=Severity.HIGH,
    area=Area.AUTHENTICATION,
    maturity=Maturity.CRAWL,
    providers=KUBERNETES,
    rationale="With anonymous authentication (kube-apiserver's default), anyone who reaches the "
    "API server acts as system:anonymous: a single RBAC grant to system:unauthenticated then "
    "hands them the cluster.",
    remediation={
        Provider.KUBERNETES: Remediation(
            summary="Start kube-apiserver with --anonymous-auth=false (kubeadm: "
            "ClusterConfiguration apiServer.extraArgs anonymous-auth=false), or, where the "
            "AuthenticationConfiguration file (--authentication-config) is available, keep "
            "anonymous requests to /healthz, /livez and /readyz with anonymous.conditions.",
            terraform="None of the cluster's own: the kube-apiserver arguments are in the "
            "kubeadm configuration or cloud-init user_data Terraform renders for the "
            "control-plane nodes",
        )
    },
    references=[ANONYMOUS_REQUESTS, APISERVER_FLAGS],
)
def anonymous_auth(cluster: KubernetesCluster):
    if (probed := probed_anonymous(cluster)) is not None:
        return probed
    return unknown(
        f"the API server was not probed: {cluster.missing(PROBE_DOC)}",
        assumption="authentication: anonymous access not probed; assumed off, although "
        "kube-apiserver's own default is on (--anonymous-auth=true)",
    )
