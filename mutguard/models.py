"""The report contract (docs/architecture.md, Report contract; schema_version 1) and the values
it is built from.

The JSON report, the publishers' messages and schemas/report.schema.json are all this module's
models serialised with aliases; renaming or removing a field bumps SCHEMA_VERSION.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from mutguard import __version__
from mutguard.sources import Provider, ScanError

SCHEMA_VERSION = "1"


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 - a check status, not a password
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    ERROR = "ERROR"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: lets callers sort and compare against --fail-on."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


class Area(StrEnum):
    NETWORK = "network"
    AUTHENTICATION = "authentication"
    PRIVILEGED_ACCESS = "privileged_access"
    GITOPS = "gitops"
    WORKLOADS = "workloads"
    DATA_PROTECTION = "data_protection"
    LOGGING = "logging"
    LIFECYCLE = "lifecycle"


GRADED_AREAS = (
    Area.NETWORK,
    Area.AUTHENTICATION,
    Area.PRIVILEGED_ACCESS,
    Area.GITOPS,
    Area.WORKLOADS,
)


class Maturity(StrEnum):
    CRAWL = "crawl"
    WALK = "walk"
    RUN = "run"


class Grade(StrEnum):
    """An area's grade; `unknown` when no check of the area could decide anything."""

    UNKNOWN = "unknown"
    NONE = "none"
    CRAWL = "crawl"
    WALK = "walk"
    RUN = "run"


class _Model(BaseModel):
    # Unknown fields are ignored, so a report written by a newer mutguard still loads.
    model_config = ConfigDict(populate_by_name=True)


class CheckMetadata(_Model):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    title: str
    severity: Severity
    area: Area
    maturity: Maturity
    providers: list[Provider]
    rationale: str
    remediation: dict[Provider, str]
    references: list[str]


class Finding(_Model):
    check_id: str
    status: Status
    severity: Severity
    title: str
    area: Area
    resource: str
    detail: str
    remediation: str
    mut_gain: int | None = Field(
        default=None,
        description="FAIL only: how much the lowest affected MUT rises when this one finding is "
        "fixed (0 when another mistake still opens the same path).",
    )
    mut_gain_from: list[str] = Field(
        default_factory=list,
        description="Which starting points (internet, workload, credential) the fix raises.",
    )


class AttackPath(_Model):
    from_: str = Field(
        alias="from", description="internet | workload:<ns>/<pod> | credential:<what>"
    )
    mut: int
    steps: list[str]


class BlastRadius(_Model):
    """What the compromise of one workload reaches."""

    workload: str = Field(description="<namespace>/<name>")
    mut: int = Field(description="1 (its app is exploited) + the cheapest further path to admin")
    steps: list[str]


class PlatformGrant(_Model):
    """A dangerous power held through a binding the platform creates itself, recognised by its
    whole content (docs/architecture.md, MUT): the platform's own, not a finding."""

    binding: str = Field(description="e.g. ClusterRoleBinding system:kube-controller-manager")
    subject: str
    power: str = Field(description="what the subject can do, e.g. read every secret")
    why: str = Field(description="the catalogued object it matches and the catalogue's source")


class MaturityGrades(_Model):
    network: Grade
    authentication: Grade
    privileged_access: Grade
    gitops: Grade
    workloads: Grade


class ClusterReport(_Model):
    name: str
    provider: Provider
    location: str
    account: str
    arn_or_id: str
    mut: int | None = Field(
        description="From the internet; null when the cluster could not be read"
    )
    mut_workload: int | None
    mut_credential: int | None
    mut_upper_bound: list[str] = Field(
        default_factory=list,
        description="Which of mut, mut_workload, mut_credential rest on an assumption (see "
        "mut_basis) because a barrier could not be read: those are upper bounds, not facts.",
    )
    mut_basis: list[str]
    paths: list[AttackPath]
    blast_radius: list[BlastRadius] = Field(
        default_factory=list, description="Per workload, when workloads were read; lowest first"
    )
    maturity: MaturityGrades
    findings: list[Finding]
    platform_grants: list[PlatformGrant] = Field(
        default_factory=list,
        description="Dangerous powers held through the platform's own bindings (Kubernetes' "
        "bootstrap policy, the provider's): kept out of the findings, shown with why",
    )
    errors: list[str]


def cluster_key(cluster: ClusterReport) -> str:
    """Stable identity of a cluster across runs. Built from values known before the cluster is
    parsed, so a cluster that cannot be read this run still has the same key."""
    return f"{cluster.provider.value}:{cluster.account}:{cluster.location}:{cluster.name}"


class ToolInfo(_Model):
    name: str = "mutguard"
    version: str = __version__


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    tool: ToolInfo = Field(default_factory=ToolInfo)
    generated_at: datetime
    clusters: list[ClusterReport]
    errors: list[ScanError] = Field(default_factory=list)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # Every report written carries schema_version, and a reader needs it before anything
        # else: required in the schema of what is written, while building a Report (or reading
        # one) may still leave it to its default.
        json_schema = handler.resolve_ref_schema(handler(core_schema))
        if handler.mode == "serialization":
            json_schema["required"] = ["schema_version", *json_schema.get("required", [])]
        return json_schema

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)
