"""The check catalogue: each check is one function with its metadata beside it.

    @check(id="eks.endpoint.public_unrestricted", title=..., severity=..., ...)
    def endpoint_public_unrestricted(cluster: EksCluster) -> Outcome | Iterable[Outcome] | None:
        ...

A check returns PASS, FAIL (with the attack-graph edges its mistake opens) or UNKNOWN (with the
reason, and the assumption MUT makes instead); None means it does not apply to this cluster. A
check that raises becomes an ERROR finding naming the cluster: it never becomes a PASS.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mutguard.models import (
    Area,
    CheckMetadata,
    CheckSummary,
    Maturity,
    Provider,
    Remediation,
    Severity,
    Status,
)
from mutguard.mut import Edge, Start, StartKind

# The checks that judge what every provider shares; a provider's own checks are named by its
# plug-in (ProviderPlugin.checks), so adding a provider adds nothing here.
COMMON_CHECK_MODULES = ("mutguard.checks.rbac", "mutguard.checks.workloads")


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str
    resource: str | None = None
    edges: tuple[Edge, ...] = ()
    starts: tuple[Start, ...] = ()
    assumption: str | None = None
    assumption_affects: tuple[StartKind, ...] = tuple(StartKind)


def passed(detail: str, resource: str | None = None) -> Outcome:
    return Outcome(Status.PASS, detail, resource)


def failed(
    detail: str,
    resource: str | None = None,
    edges: Iterable[Edge] = (),
    starts: Iterable[Start] = (),
) -> Outcome:
    return Outcome(Status.FAIL, detail, resource, tuple(edges), tuple(starts))


def passed_unless_unread(detail: str, unread: int, document: str, check_id: str) -> Outcome:
    """PASS, unless `unread` objects of `document` were skipped as malformed: they may hold the
    very thing the check looks for, so it cannot tell (`check_id` names them)."""
    if not unread:
        return passed(detail)
    return unknown(
        f"{detail} among the objects read, but {unread} object(s) of {document} could not be "
        f"read and may hold it (see {check_id})"
    )


def unknown(
    reason: str,
    resource: str | None = None,
    assumption: str | None = None,
    affects: Iterable[StartKind] = tuple(StartKind),
) -> Outcome:
    """Cannot decide. `assumption` is what MUT assumes instead (it goes into mut_basis) and
    `affects` the starting points whose MUT therefore becomes an upper bound."""
    return Outcome(
        Status.UNKNOWN, reason, resource, assumption=assumption, assumption_affects=tuple(affects)
    )


CheckResult = Outcome | Iterable[Outcome] | None


@dataclass(frozen=True)
class Check:
    meta: CheckMetadata
    run: Callable[[Any], CheckResult]
    # Made once per provider and shared by every finding of every cluster: nothing changes a
    # summary (a report that needs another provider's remediation merges them into a copy).
    _summaries: dict[Provider, CheckSummary] = field(
        default_factory=dict, compare=False, repr=False
    )

    def summary(self, provider: Provider) -> CheckSummary:
        """What this check's findings in a cluster of `provider` share."""
        if provider not in self._summaries:
            self._summaries[provider] = CheckSummary.of(self.meta, provider)
        return self._summaries[provider]


_REGISTRY: dict[str, Check] = {}


def check(
    *,
    id: str,
    title: str,
    severity: Severity,
    area: Area,
    maturity: Maturity,
    providers: Iterable[Provider],
    rationale: str,
    remediation: dict[Provider, Remediation],
    references: Iterable[str],
    pass_detail: str | None = None,
) -> Callable[[Callable[[Any], CheckResult]], Callable[[Any], CheckResult]]:
    """`pass_detail`: what the check's PASS says when nothing in scope is wrong, when that is
    always the same sentence (the JSON report writes it once, in the check's summary)."""
    meta = CheckMetadata(
        id=id,
        title=title,
        severity=severity,
        area=area,
        maturity=maturity,
        providers=list(providers),
        rationale=rationale,
        remediation=remediation,
        references=list(references),
        pass_detail=pass_detail,
    )
    missing = set(meta.providers) - set(meta.remediation)
    if missing:
        raise ValueError(f"check {id}: no remediation for {sorted(missing)}")

    def register(func: Callable[[Any], CheckResult]) -> Callable[[Any], CheckResult]:
        if id in _REGISTRY:
            raise ValueError(f"check id {id} is registered twice")
        _REGISTRY[id] = Check(meta, func)
        return func

    return register


# A verdict of a setting check: the values it applies to, the status and the detail, in which
# {value} stands for the value read.
Verdict = tuple[tuple[Any, ...], Status, str]


def setting_check(
    *, field: str, read: Callable[[Any], Any], verdicts: Iterable[Verdict], **metadata: Any
) -> None:
    """Register a check that judges one reported setting by a table of verdicts; the metadata
    arguments are `check`'s. A value the table does not list is UNKNOWN naming `field`: a value
    the API added later may mean anything, so it is never guessed to pass."""
    table = tuple(verdicts)

    def judge(cluster: Any) -> Outcome:
        value = read(cluster)
        for values, status, detail in table:
            if value in values:
                return Outcome(status, detail.format(value=value))
        return unknown(f"unrecognised {field} {value!r}")

    check(**metadata)(judge)


def catalogue(provider: Provider | None = None) -> list[Check]:
    """Every registered check (for one provider if given), ordered by id."""
    from mutguard.providers import PROVIDERS

    for module in COMMON_CHECK_MODULES:
        importlib.import_module(module)
    plugins = PROVIDERS.entries() if provider is None else [PROVIDERS.get(provider)]
    for plugin in plugins:
        plugin.import_checks()
    checks = sorted(_REGISTRY.values(), key=lambda c: c.meta.id)
    if provider is None:
        return checks
    return [c for c in checks if provider in c.meta.providers]
