"""What the providers' checks judge alike: API-server allow-lists and the anonymous probe."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from mutguard.checks import Outcome, failed, passed, unknown
from mutguard.cluster import Cluster
from mutguard.mut import ANONYMOUS, API, INTERNET, Edge

# Public ranges this wide hold addresses anyone can rent (cloud, ISP pools): no barrier.
OPEN_PREFIX_MAX = 8


def open_cidrs(cidrs: Iterable[str]) -> tuple[list[str], list[str]]:
    """(CIDRs open to anyone, entries that are not CIDRs)."""
    open_, invalid = [], []
    for cidr in cidrs:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            invalid.append(cidr)
            continue
        if network.prefixlen <= OPEN_PREFIX_MAX and not network.is_private:
            open_.append(cidr)
    return open_, invalid


ANONYMOUS_AUTHENTICATED = Edge(
    API, ANONYMOUS, 0, "authentication", "anonymous requests are authenticated"
)


def probed_anonymous(cluster: Cluster) -> Outcome | None:
    """The anonymous-auth verdict of probe.json, the live truth wherever it was taken."""
    if cluster.probe is None:
        return None
    if cluster.probe.anonymous_version or cluster.probe.anonymous_api:
        opened = Edge(API, ANONYMOUS, 0, "authentication", "anonymous requests are authenticated")
        return failed(
            "the API server answered GET /version without credentials (probe)", edges=[opened]
        )
    return passed("the API server refused unauthenticated requests (probe)")


def allow_list_judgement(field: str, cidrs: list[str], endpoint: str) -> Outcome | None:
    """FAIL when an endpoint's allow-list admits anyone, UNKNOWN when an entry is not a CIDR,
    None when the list is a real barrier (the caller says what it admits)."""
    open_to_anyone, invalid = open_cidrs(cidrs)
    if open_to_anyone:
        listed = ", ".join(open_to_anyone)
        return failed(
            f"{endpoint} accepts {listed}",
            edges=[Edge(INTERNET, API, 0, "network", f"API endpoint public to {listed}")],
        )
    if invalid:
        return unknown(
            f"{field} has entries that are not CIDRs: {', '.join(invalid)}",
            assumption=f"network: {field} unreadable; assumed restricted",
        )
    return None
