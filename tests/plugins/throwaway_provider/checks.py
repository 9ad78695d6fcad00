"""The lab's one check: its endpoint must not be public."""

from __future__ import annotations

from mutguard.checks import check, failed, passed
from mutguard.models import Area, Maturity, Provider, Remediation, Severity
from mutguard.mut import API, INTERNET, Edge

LAB = Provider("throwaway")


@check(
    id="throwaway.endpoint.public",
    title="The lab's API endpoint is not public",
    severity=Severity.HIGH,
    area=Area.NETWORK,
    maturity=Maturity.CRAWL,
    providers=(LAB,),
    rationale="A public endpoint removes the network barrier.",
    remediation={LAB: Remediation(summary="Make the lab's endpoint private.")},
    references=(),
)
def endpoint_public(cluster):
    if cluster.endpoint.public:
        return failed(
            "the lab's endpoint is public",
            edges=[Edge(INTERNET, API, 0, "network", "the lab's endpoint is public")],
        )
    return passed("the lab's endpoint is private")
