"""Machine-readable messages: one per cluster, the versioned JSON report, split to fit a sink.

A message body is a `ClusterMessage`: a Report (same schema_version; docs/architecture.md,
Report contract) holding exactly one cluster, plus `part`/`parts` and a short `change` summary
(adding fields keeps the schema version).
When the body would exceed a sink's size limit, the cluster's findings (then its blast_radius
entries, then its platform_grants) are divided across parts; every part is itself a valid report
with the same cluster header, MUT values and paths. schemas/message.schema.json is
`message_schema()` (regenerate with
`python -m mutguard.publish.messages > schemas/message.schema.json`).

Attributes travel beside the body where the sink has them (SQS/SNS message attributes, Pub/Sub
attributes) so subscribers can filter without parsing it; the keys and their meaning are
`ATTRIBUTES`. Sizes count body and attributes together, as SQS does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import BaseModel, Field

from mutguard.models import (
    BlastRadius,
    ClusterReport,
    Finding,
    PlatformGrant,
    Report,
    Severity,
    Status,
)
from mutguard.state import ClusterChange, Mut

# Size limits in bytes, body and attributes together.
SQS_SNS_LIMIT = 256 * 1024  # the default maximum message size of SQS and SNS
SQS_SNS_MAX_LIMIT = 1024 * 1024  # SQS queues can be configured up to 1 MiB
STORAGE_QUEUE_LIMIT = 64 * 1024  # Azure Storage Queue (before any Base64 encoding the SDK adds)
PUBSUB_LIMIT = 10_000_000  # Google Pub/Sub: 10 MB per message
# The lists of a cluster that a message too large for one is divided along, in this order.
SPLIT_FIELDS = ("findings", "blast_radius", "platform_grants")

ATTRIBUTES = {
    "schema_version": "the report schema version (string)",
    "provider": "eks | gke | aks | kubernetes",
    "cluster": "cluster name",
    "account": "account id / project / subscription",
    "location": "region or zone",
    "severity": "worst severity among the cluster's FAIL findings, or none",
    "mut": "MUT from the internet (number; absent when the cluster could not be read)",
    "mut_lowest": "lowest of mut, mut_workload, mut_credential (number; absent when unknown)",
    "change": "worsened | new | unreadable | resolved | first_seen (nothing failing) | "
    "unchanged | unknown (no state kept): the first that applies",
    "part": "1-based part number (number)",
    "parts": "number of parts of this cluster's message (number)",
}

Attributes = dict[str, str | int]


class MessageTooLarge(ValueError):
    """One finding (or blast radius entry) alone does not fit the sink's limit."""


class ChangeSummary(BaseModel):
    first_seen: bool = Field(description="no state for this cluster from an earlier run")
    previous_mut: int | None
    previous_mut_workload: int | None
    previous_mut_credential: int | None
    mut_dropped: list[str] = Field(description="which of the three MUT values dropped")
    new: int = Field(description="FAIL findings not alerted before")
    severity_rose: int = Field(description="FAIL findings whose severity rose")
    resolved: int = Field(description="findings that were FAIL and are now PASS or gone")


class ClusterMessage(Report):
    """One cluster's share of a mutguard report, as queues and webhooks carry it: a valid
    report (the same schema_version) with exactly one cluster. Attributes sent beside it:
    schema_version, provider, cluster, account, location, severity, mut, mut_lowest, change,
    part, parts."""

    clusters: list[ClusterReport] = Field(min_length=1, max_length=1)
    part: int = Field(default=1, ge=1, description="which part of this cluster's message")
    parts: int = Field(default=1, ge=1, description="findings are divided across the parts")
    change: ChangeSummary | None = Field(
        default=None, description="since the last run; null when no state is kept"
    )


@dataclass(frozen=True)
class Message:
    body: str
    attributes: Attributes

    @property
    def size(self) -> int:
        return message_size(self.body, self.attributes)


def message_size(body: str, attributes: Attributes) -> int:
    """Bytes as SQS counts them: body plus each attribute's name, type and value."""
    return len(body.encode()) + sum(
        len(name.encode()) + len(_attribute_type(value)) + len(str(value).encode())
        for name, value in attributes.items()
    )


def _attribute_type(value: str | int) -> str:
    return "Number" if isinstance(value, int) else "String"


def worst_failure(cluster: ClusterReport) -> Severity | None:
    failed = [f.severity for f in cluster.findings if f.status is Status.FAIL]
    return max(failed, key=lambda s: s.rank) if failed else None


def change_kind(change: ClusterChange | None) -> str:
    if change is None:
        return "unknown"
    kinds = (
        ("worsened", change.worsened),
        ("new", bool(change.new)),
        ("unreadable", change.became_unreadable),
        ("resolved", bool(change.resolved)),
        ("first_seen", change.first_seen),
    )
    return next((name for name, applies in kinds if applies), "unchanged")


def change_summary(change: ClusterChange) -> ChangeSummary:
    before = change.before or Mut(None, None, None)
    return ChangeSummary(
        first_seen=change.first_seen,
        previous_mut=before.mut,
        previous_mut_workload=before.mut_workload,
        previous_mut_credential=before.mut_credential,
        mut_dropped=list(change.mut_dropped),
        new=len(change.new),
        severity_rose=len(change.severity_rose),
        resolved=len(change.resolved),
    )


def attributes(
    cluster: ClusterReport, change: ClusterChange | None, part: int, parts: int
) -> Attributes:
    worst = worst_failure(cluster)
    values: Attributes = {
        "schema_version": Report.model_fields["schema_version"].default,
        "provider": cluster.provider.value,
        "cluster": cluster.name,
        "account": cluster.account,
        "location": cluster.location,
        "severity": worst.value if worst else "none",
        "change": change_kind(change),
        "part": part,
        "parts": parts,
    }
    lowest = Mut.of(cluster).lowest()
    if cluster.mut is not None:
        values["mut"] = cluster.mut
    if lowest is not None:
        values["mut_lowest"] = lowest
    return values


def _message(
    report: Report,
    cluster: ClusterReport,
    change: ClusterChange | None,
    part: tuple[int, int] = (1, 1),
    shown: ClusterReport | None = None,
) -> Message:
    """`shown` is the part of `cluster` this message carries; attributes describe the whole."""
    number, parts = part
    body = ClusterMessage(
        tool=report.tool,
        generated_at=report.generated_at,
        clusters=[shown or cluster],
        part=number,
        parts=parts,
        change=change_summary(change) if change else None,
    )
    return Message(body.model_dump_json(by_alias=True), attributes(cluster, change, number, parts))


def cluster_messages(
    report: Report,
    cluster: ClusterReport,
    change: ClusterChange | None = None,
    limit: int = SQS_SNS_LIMIT,
) -> list[Message]:
    """The cluster as one message, or as several parts when one would exceed `limit` bytes."""
    whole = _message(report, cluster, change)
    if whole.size <= limit:
        return [whole]
    groups = _pack(report, cluster, change, limit)
    messages = [
        _message(report, cluster, change, (index, len(groups)), cluster.model_copy(update=group))
        for index, group in enumerate(groups, start=1)
    ]
    if oversized := [m for m in messages if m.size > limit]:
        raise MessageTooLarge(f"cluster {cluster.name}: a part is {oversized[0].size} bytes")
    return messages


def _pack(
    report: Report, cluster: ClusterReport, change: ClusterChange | None, limit: int
) -> list[dict[str, list]]:
    """Divide findings, then blast radius entries, then platform grants, greedily into groups
    that fit, each sized exactly (`_Part.cost`)."""
    items: list[tuple[str, Finding | BlastRadius | PlatformGrant]] = [
        (name, item) for name in SPLIT_FIELDS for item in getattr(cluster, name)
    ]
    # The emptiest part, numbered as high as any part could be numbered.
    most = len(items)
    skeleton = cluster.model_copy(update={name: [] for name in SPLIT_FIELDS})
    budget = limit - _message(report, cluster, change, (most, most), skeleton).size
    path_steps = skeleton.route_steps
    check_entries: dict[tuple[str, int], int] = {}
    parts: list[_Part] = []
    for name, item in items:
        if parts:
            cost = parts[-1].cost(cluster, name, item, check_entries)
            if parts[-1].used + cost <= budget:
                parts[-1].add(name, item, cost)
                continue
        fresh = _Part(path_steps)
        cost = fresh.cost(cluster, name, item, check_entries)
        if cost > budget:
            raise MessageTooLarge(
                f"cluster {cluster.name}: one {name} entry takes {cost} bytes; with the report "
                f"header it cannot fit the {limit}-byte limit ({_label(item)})"
            )
        fresh.add(name, item, cost)
        parts.append(fresh)
    return [part.items for part in parts]


class _Part:
    """What one part holds so far: enough to tell exactly how many bytes an item adds."""

    def __init__(self, path_steps: list[str]) -> None:
        self.items: dict[str, list] = {name: [] for name in SPLIT_FIELDS}
        self.used = 0
        self._checks: set[str] = set()
        # The part's route_steps: every part has the cluster's paths, then its entries' steps.
        self._steps = {step: index for index, step in enumerate(path_steps)}
        # The part's platform_reasons, in the order its grants name them.
        self._reasons: dict[str, int] = {}

    def cost(
        self,
        cluster: ClusterReport,
        name: str,
        item: Finding | BlastRadius | PlatformGrant,
        check_entries: dict[tuple[str, int], int],
    ) -> int:
        """Compact JSON adds the item's own bytes plus one comma after the first; a finding
        whose check is new to the part, the check's entry in `checks`; a blast radius entry, its
        steps as indexes plus the texts new to `route_steps` (each with a comma after the
        first); a platform grant, its `why` as an index plus the text when new to
        `platform_reasons`."""
        cost = 1 if self.items[name] else 0
        if isinstance(item, Finding):
            cost += len(cluster.finding_json(item).encode())
            if item.check_id not in self._checks:
                cost += _entry_size(item, check_entries) + (1 if self._checks else 0)
        elif isinstance(item, BlastRadius):
            indexes, new = self._indexes(item.steps)
            written = {**item.model_dump(mode="json", by_alias=True), "steps": indexes}
            cost += len(json.dumps(written, ensure_ascii=False, separators=(",", ":")).encode())
            known = len(self._steps)
            cost += sum(
                len(json.dumps(step, ensure_ascii=False).encode()) + (1 if known + i else 0)
                for i, step in enumerate(new)
            )
        else:
            index = self._reasons.get(item.why, len(self._reasons))
            written = {**item.model_dump(mode="json", by_alias=True), "why": index}
            cost += len(json.dumps(written, ensure_ascii=False, separators=(",", ":")).encode())
            if item.why not in self._reasons:
                cost += len(json.dumps(item.why, ensure_ascii=False).encode()) + (1 if index else 0)
        return cost

    def add(self, name: str, item: Finding | BlastRadius | PlatformGrant, cost: int) -> None:
        self.items[name].append(item)
        self.used += cost
        if isinstance(item, Finding):
            self._checks.add(item.check_id)
        elif isinstance(item, BlastRadius):
            for step in self._indexes(item.steps)[1]:
                self._steps[step] = len(self._steps)
        else:
            self._reasons.setdefault(item.why, len(self._reasons))

    def _indexes(self, steps: list[str]) -> tuple[list[int], list[str]]:
        """The indexes the steps get in this part's route_steps, and the texts new to it."""
        new: dict[str, int] = {}
        indexes = []
        for step in steps:
            index = self._steps.get(step)
            if index is None:
                index = new.setdefault(step, len(self._steps) + len(new))
            indexes.append(index)
        return indexes, list(new)


def _entry_size(finding: Finding, known: dict[tuple[str, int], int]) -> int:
    """Bytes of the `"id":{...}` entry the finding's check summary makes in a one-cluster
    report's `checks` (summaries are shared, so each is measured once)."""
    key = (finding.check_id, id(finding.check))
    if key not in known:
        name = json.dumps(finding.check_id, ensure_ascii=False)
        entry = finding.check.model_dump_json(by_alias=True)
        known[key] = len(name.encode()) + 1 + len(entry.encode())
    return known[key]


def _label(item: Finding | BlastRadius | PlatformGrant) -> str:
    if isinstance(item, Finding):
        return f"{item.check_id} on {item.resource}"
    if isinstance(item, PlatformGrant):
        return f"platform grant of {item.binding} to {item.subject}"
    return f"workload {item.workload}"


def message_schema() -> dict:
    schema = ClusterMessage.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:mutguard:message:{Report.model_fields['schema_version'].default}"
    return schema


if __name__ == "__main__":
    print(json.dumps(message_schema(), indent=2, sort_keys=True))
