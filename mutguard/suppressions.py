"""Suppressions: accepted risks (owner, reason, expiry date; from a YAML file or kept in the
state store) that silence findings, never a MUT drop: the MUT is the headline and no exception
for one finding may hide that the cluster got weaker."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mutguard.errors import InputError
from mutguard.files import read_text_file, read_yaml
from mutguard.models import ClusterReport, Finding, cluster_key

if TYPE_CHECKING:
    from mutguard.store import StateStore


class SuppressionError(InputError):
    """A suppressions file that cannot be used; the message names the entry and the field."""


class Suppression(BaseModel):
    """One accepted risk: findings of `check_id` (optionally only `resource`, only `cluster`)
    are not alerted until the end of `expires` (UTC)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    check_id: str = Field(min_length=1)
    resource: str | None = Field(default=None, min_length=1, description="exact; omit for all")
    cluster: str | None = Field(
        default=None, min_length=1, description="name, arn_or_id or cluster key; omit for all"
    )
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: datetime.date

    def active(self, today: datetime.date) -> bool:
        return today <= self.expires

    def covers(self, cluster: ClusterReport, finding: Finding) -> bool:
        return (
            self.check_id == finding.check_id
            and self.resource in (None, finding.resource)
            and self.cluster in (None, cluster.name, cluster.arn_or_id, cluster_key(cluster))
        )


def parse_suppressions(data: Any, origin: str = "suppressions") -> list[Suppression]:
    """`{"suppressions": [ {check_id, owner, reason, expires, resource?, cluster?}, ... ]}`."""
    if not isinstance(data, Mapping) or not isinstance(data.get("suppressions"), list):
        raise SuppressionError(f"{origin}: expected a mapping with a 'suppressions' list")
    if unknown := sorted(set(data) - {"suppressions"}):
        raise SuppressionError(f"{origin}: unknown top-level key(s): {', '.join(unknown)}")
    return [_suppression(entry, index, origin) for index, entry in enumerate(data["suppressions"])]


def _suppression(entry: Any, index: int, origin: str) -> Suppression:
    label = f"{origin}: suppression #{index + 1}"
    if isinstance(entry, Mapping) and entry.get("check_id"):
        label += f" ({entry['check_id']})"
    try:
        return Suppression.model_validate(entry)
    except ValidationError as err:
        problems = "; ".join(_problem(error) for error in err.errors())
        raise SuppressionError(f"{label}: {problems}") from None


def _problem(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "entry"
    if error["type"] == "missing":
        return f"{where} is required"
    return f"{where}: {error['msg']}"


def load_suppressions(path: Path) -> list[Suppression]:
    return parse_suppressions_yaml(read_text_file(path, SuppressionError), str(path))


def parse_suppressions_yaml(text: str, origin: str) -> list[Suppression]:
    return parse_suppressions(read_yaml(text, origin, SuppressionError), origin)


def stored_suppressions(store: StateStore) -> list[Suppression]:
    """The suppressions document kept in the store (`mutguard suppressions push`), if any."""
    text = store.load_suppressions()
    return [] if text is None else parse_suppressions_yaml(text, "the state store's suppressions")
