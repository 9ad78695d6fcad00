"""What the providers' checks judge alike: API-server allow-lists, the anonymous probe and
version support calendars."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from datetime import date
from functools import cache
from importlib import resources

from mutguard.checks import Outcome, failed, passed, unknown
from mutguard.cluster import Cluster, minor_version
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


@cache
def _support_calendar(name: str) -> dict[str, dict[str, str | None]]:
    text = resources.files("mutguard").joinpath("data", name).read_text("utf-8")
    return json.loads(text)["versions"]


def support_ends(cluster: Cluster, calendar: str, field: str) -> date | Outcome:
    """When support of the cluster's minor version ends, by the `field` column of the bundled
    `calendar` (mutguard/data/), or an UNKNOWN outcome: a version newer than the calendar, or
    one whose dates were not yet published, is never judged by guess. A version older than
    every row ends no later than the oldest row does (support ends in version order): once that
    date is past, the outcome is already the FAIL."""
    minor = cluster.minor_version()
    if minor is None:
        return unknown(f"version {cluster.version!r} is not a Kubernetes version")
    key = f"{minor[0]}.{minor[1]}"
    rows = _support_calendar(calendar)
    end = rows.get(key, {}).get(field)
    if end is not None:
        return date.fromisoformat(end)
    oldest = min(rows, key=minor_version)  # every row is a "major.minor" key
    oldest_end = rows[oldest].get(field)
    if minor < minor_version(oldest) and oldest_end is not None:
        ended = date.fromisoformat(oldest_end)
        if cluster.observed_at.date() > ended:
            return failed(f"{key} is older than {oldest}, whose support ended on {ended}")
    return unknown(
        f"support dates for {key} are not known to this mutguard release; upgrade mutguard"
    )
