"""Which API-server allow-list entries are a barrier: shared by the providers' endpoint checks."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

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
