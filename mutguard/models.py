"""The report contract (docs/architecture.md, Report contract; schema_version 3) and the values
it is built from.

The JSON report, the publishers' messages and schemas/report.schema.json are all this module's
models serialised with aliases; renaming or removing a field bumps SCHEMA_VERSION.

A report carries what every finding of a check shares once (`checks`: a CheckSummary by check
id) and why the platform's grants are the platform's (`platform_reasons`); a finding carries
its check_id and what is particular to its resource. In memory a finding holds its check's
summary and its cluster's provider (`finding.check`, `finding.title`, `finding.remediation`...),
and every finding and grant its full text: reading a report resolves what it wrote once.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    ValidationError,
    computed_field,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from mutguard import __version__
from mutguard.sources import Provider, ScanError

SCHEMA_VERSION = "3"


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

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(core_schema)
        if handler.mode == "serialization":
            cls._as_written(handler.resolve_ref_schema(json_schema))
        return json_schema

    @classmethod
    def _as_written(cls, json_schema: JsonSchemaValue) -> None:
        """Where the JSON written differs from the model read, its schema says so here."""


class _Numerous(_Model):
    """A model a large cluster holds tens of thousands of (findings, blast radius entries)."""

    def model_post_init(self, context: Any) -> None:
        # pydantic keeps a set of the fields each instance was given (728 bytes for a finding's
        # seven, more than the rest of it), and nothing here reads it: one set naming every
        # field is shared by all instances of the model.
        every = _EVERY_FIELD.get(type(self))
        if every is None:
            every = _EVERY_FIELD[type(self)] = set(type(self).model_fields)
        object.__setattr__(self, "__pydantic_fields_set__", every)


_EVERY_FIELD: dict[type[BaseModel], set[str]] = {}


def _is_none(value: object) -> bool:
    return value is None


def _is_empty(value: object) -> bool:
    return not value


class Remediation(_Model):
    """How to fix what a check finds on one provider: what to do, then where to do it. The
    fields hold plain text (a format sets the commands as code); unset ones are left out."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(description="What to do, in one sentence")
    cli: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="The command(s) to run (aws, gcloud, az, kubectl), one per line; the "
        "summary says whether they are steps or alternatives",
    )
    terraform: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="The Terraform resource and argument to set, or why none holds the setting",
    )
    console: str | None = Field(
        default=None, exclude_if=_is_none, description="Where to change it in the cloud console"
    )


class CheckMetadata(_Model):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
    title: str
    severity: Severity
    area: Area
    maturity: Maturity
    providers: list[Provider]
    rationale: str
    remediation: dict[Provider, Remediation]
    references: list[str]
    pass_detail: str | None = Field(
        default=None,
        description="What every PASS of the check says when nothing in scope is wrong, if it "
        "always says the same",
    )


class CheckSummary(_Model):
    """What a report says of a check, once for all its findings. The rationale and references
    stay in the catalogue (`mutguard checks`)."""

    model_config = ConfigDict(extra="forbid")

    title: str
    severity: Severity
    area: Area
    maturity: Maturity
    remediation: dict[Provider, Remediation] = Field(
        description="For the providers of the clusters the check has findings in"
    )
    pass_detail: str | None = Field(
        default=None,
        exclude_if=_is_none,
        description="The detail of a PASS finding of this check that leaves out its own",
    )

    @classmethod
    def of(cls, meta: CheckMetadata, provider: Provider) -> CheckSummary:
        return cls(
            title=meta.title,
            severity=meta.severity,
            area=meta.area,
            maturity=meta.maturity,
            remediation={provider: meta.remediation[provider]},
            pass_detail=meta.pass_detail,
        )


class Finding(_Numerous):
    """One check's verdict on one resource. What every finding of the check shares (title,
    severity, area, remediation...) is in the report's `checks`, written once."""

    check_id: str
    status: Status
    resource: str = Field(description="What the finding is about; omitted when it is the cluster")
    detail: str = Field(
        description="Omitted on a PASS that says its check's pass_detail; `: ...` continues the "
        "resource (the detail is `<resource>: ...`)"
    )
    mut_gain: int | None = Field(
        default=None,
        exclude_if=_is_empty,
        description="FAIL only: how much the lowest affected MUT rises when this one finding is "
        "fixed; omitted when 0 (another mistake still opens the same path).",
    )
    mut_gain_from: list[str] = Field(
        default_factory=list,
        exclude_if=_is_empty,
        description="Which starting points (internet, workload, credential) the fix raises.",
    )
    check: CheckSummary = Field(exclude=True, repr=False)
    provider: Provider = Field(exclude=True, repr=False)

    @classmethod
    def _as_written(cls, json_schema: JsonSchemaValue) -> None:
        # In memory every finding names its resource and says its detail; the report leaves out
        # the cluster's own resource and a PASS's stock detail.
        json_schema["required"] = [
            f for f in json_schema["required"] if f not in ("resource", "detail")
        ]

    @property
    def severity(self) -> Severity:
        return self.check.severity

    @property
    def title(self) -> str:
        return self.check.title

    @property
    def area(self) -> Area:
        return self.check.area

    @property
    def remediation(self) -> Remediation:
        return self.check.remediation[self.provider]


class _Routed(_Model):
    """A model whose `steps` the report writes as indexes into its cluster's `route_steps`."""

    @classmethod
    def _as_written(cls, json_schema: JsonSchemaValue) -> None:
        json_schema["properties"]["steps"] = {
            "type": "array",
            "items": {"type": "integer", "minimum": 0},
            "description": "Indexes into the cluster's route_steps",
        }


class AttackPath(_Routed):
    from_: str = Field(
        alias="from", description="internet | workload:<ns>/<pod> | credential:<what>"
    )
    mut: int
    steps: list[str] = Field(description="`stage (cost): why`, the start's own mistake first")


class BlastRadius(_Numerous, _Routed):
    """What the compromise of one workload reaches."""

    workload: str = Field(description="<namespace>/<name>")
    mut: int = Field(description="1 (its app is exploited) + the cheapest further path to admin")
    steps: list[str] = Field(
        description="The further path, `stage (cost): why` (the exploited app is not repeated)"
    )


class PlatformGrant(_Model):
    """A dangerous power held through a binding the platform creates itself, recognised by its
    whole content (docs/architecture.md, MUT): the platform's own, not a finding."""

    binding: str = Field(description="e.g. ClusterRoleBinding system:kube-controller-manager")
    subject: str
    power: str = Field(description="what the subject can do, e.g. read every secret")
    why: str = Field(description="the catalogued object it matches and the catalogue's source")

    @classmethod
    def _as_written(cls, json_schema: JsonSchemaValue) -> None:
        json_schema["properties"]["why"] = {
            "type": "integer",
            "minimum": 0,
            "description": "An index into the report's platform_reasons",
        }


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
        default_factory=list,
        description="Per workload, when workloads were read; lowest first",
    )
    maturity: MaturityGrades
    findings: list[Finding]
    platform_grants: list[PlatformGrant] = Field(
        default_factory=list,
        description="Dangerous powers held through the platform's own bindings (Kubernetes' "
        "bootstrap policy, the provider's): kept out of the findings, shown with why",
    )
    errors: list[str]

    @computed_field(
        description="Every distinct step of the cluster's paths and blast_radius, in order of "
        "first use: their `steps` are indexes into it"
    )
    @property
    def route_steps(self) -> list[str]:
        return list(self._route_step_indexes())

    def _route_step_indexes(self) -> dict[str, int]:
        indexes: dict[str, int] = {}
        for route in (*self.paths, *self.blast_radius):
            for step in route.steps:
                indexes.setdefault(step, len(indexes))
        return indexes

    @model_validator(mode="before")
    @classmethod
    def _read_compact_form(cls, data: Any) -> Any:
        """A cluster read from JSON: findings without a resource are about the cluster, a
        detail `: ...` continues its resource, a FAIL without a MUT gain gains 0, and route steps
        are looked up in `route_steps`."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("findings"), list):
            cluster_resource = data.get("arn_or_id")
            data["findings"] = [_finding_read(f, cluster_resource) for f in data["findings"]]
        table = data.pop("route_steps", None)
        if table is not None:
            if not isinstance(table, list):
                raise ValueError("route_steps: expected a list of step texts")
            for name in ("paths", "blast_radius"):
                if isinstance(data.get(name), list):
                    data[name] = [_steps_looked_up(route, table, name) for route in data[name]]
        return data

    @model_serializer(mode="wrap")
    def _compact(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        for finding, written in zip(self.findings, data.get("findings", ()), strict=True):
            self._leave_out_what_is_known(finding, written)
        # The table the computed field just wrote, not a second walk over the routes.
        indexes = {step: index for index, step in enumerate(data["route_steps"])}
        for name in ("paths", "blast_radius"):
            for route in data.get(name, ()):
                route["steps"] = [indexes[step] for step in route["steps"]]
        return data

    def _leave_out_what_is_known(self, finding: Finding, written: dict) -> None:
        """The cluster's own resource, its check's stock PASS detail, and the resource a detail
        begins with (`<resource>: ...` is written `: ...`)."""
        if finding.resource == self.arn_or_id:
            del written["resource"]
        if finding.status is Status.PASS and finding.detail == finding.check.pass_detail:
            del written["detail"]
        elif finding.detail.startswith(f"{finding.resource}: "):
            written["detail"] = finding.detail[len(finding.resource) :]

    def finding_json(self, finding: Finding) -> str:
        """The finding's compact JSON as this cluster's report writes it."""
        data = finding.model_dump(mode="json", by_alias=True)
        self._leave_out_what_is_known(finding, data)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _finding_read(finding: Any, cluster_resource: Any) -> Any:
    if not isinstance(finding, dict):
        return finding
    finding = {"resource": cluster_resource, **finding}
    resource, detail = finding["resource"], finding.get("detail")
    if isinstance(resource, str) and isinstance(detail, str) and detail.startswith(": "):
        finding["detail"] = resource + detail
    if finding.get("status") == Status.FAIL.value:
        finding.setdefault("mut_gain", 0)
    return finding


def _steps_looked_up(route: Any, table: list[Any], field: str) -> Any:
    if not isinstance(route, dict) or not isinstance(route.get("steps"), list):
        return route
    steps = []
    for index in route["steps"]:
        if type(index) is not int or not 0 <= index < len(table):
            raise ValueError(
                f"{field}: step {str(index)[:20]!r} is not an index into route_steps "
                f"({len(table)} steps)"
            )
        steps.append(table[index])
    return {**route, "steps": steps}


def _with_checks(cluster: Any, checks: dict[str, CheckSummary]) -> Any:
    if not isinstance(cluster, dict) or not isinstance(cluster.get("findings"), list):
        return cluster
    findings = []
    for finding in cluster["findings"]:
        if isinstance(finding, dict) and "check" not in finding:
            check_id, provider = finding.get("check_id"), cluster.get("provider")
            if not isinstance(check_id, str) or check_id not in checks:
                raise ValueError(
                    f"finding {str(check_id)[:100]!r}: its check is not in the report's checks"
                )
            if not isinstance(provider, str) or provider not in checks[check_id].remediation:
                raise ValueError(
                    f"finding {check_id[:100]!r}: the report's checks hold no remediation for "
                    f"provider {str(provider)[:20]!r}"
                )
            finding = {**finding, "check": checks[check_id], "provider": provider}
            if "detail" not in finding and finding.get("status") == Status.PASS.value:
                stock = checks[check_id].pass_detail
                if stock is None:
                    raise ValueError(
                        f"finding {check_id[:100]!r}: a PASS without a detail, and its check in "
                        "the report's checks has no pass_detail"
                    )
                finding["detail"] = stock
        findings.append(finding)
    return {**cluster, "findings": findings}


def _with_reasons(cluster: Any, reasons: list[Any]) -> Any:
    if not isinstance(cluster, dict) or not isinstance(cluster.get("platform_grants"), list):
        return cluster
    grants = []
    for grant in cluster["platform_grants"]:
        if isinstance(grant, dict):
            why = grant.get("why")
            if type(why) is not int or not 0 <= why < len(reasons):
                raise ValueError(
                    f"platform_grants: why {str(why)[:20]!r} is not an index into "
                    f"platform_reasons ({len(reasons)} reasons)"
                )
            grant = {**grant, "why": reasons[why]}
        grants.append(grant)
    return {**cluster, "platform_grants": grants}


def _summary(check_id: str, raw: Any) -> CheckSummary:
    try:
        return CheckSummary.model_validate(raw)
    except ValidationError as exc:
        # Said in one line: the report's reader names it.
        raise ValueError(
            f"checks[{check_id[:100]!r}]: not a check summary ({exc.error_count()} errors)"
        ) from None


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

    @computed_field(
        description="What every finding of a check shares, by check id, for every check a "
        "finding of the report names: written once per report"
    )
    @property
    def checks(self) -> dict[str, CheckSummary]:
        found: dict[str, CheckSummary] = {}
        for cluster in self.clusters:
            for finding in cluster.findings:
                known = found.get(finding.check_id)
                if known is None:
                    found[finding.check_id] = finding.check
                elif finding.provider not in known.remediation:
                    remediation = {**known.remediation, **finding.check.remediation}
                    found[finding.check_id] = known.model_copy(update={"remediation": remediation})
        return dict(sorted(found.items()))

    @computed_field(
        description="Why each platform grant is the platform's own, in order of first use, "
        "once per report: a grant's `why` is an index into it"
    )
    @property
    def platform_reasons(self) -> list[str]:
        return list(
            dict.fromkeys(g.why for cluster in self.clusters for g in cluster.platform_grants)
        )

    @model_serializer(mode="wrap")
    def _reasons_once(self, handler: SerializerFunctionWrapHandler):
        data = handler(self)
        # The table the computed field just wrote.
        indexes = {why: index for index, why in enumerate(data["platform_reasons"])}
        for cluster in data["clusters"]:
            for grant in cluster["platform_grants"]:
                grant["why"] = indexes[grant["why"]]
        return data

    @model_validator(mode="before")
    @classmethod
    def _read_compact_form(cls, data: Any) -> Any:
        """A report read from JSON: each finding gets its check's metadata from `checks` (and
        a PASS without a detail its check's pass_detail), and its cluster's provider; each
        platform grant its `why` from `platform_reasons`."""
        if not isinstance(data, dict):
            return data
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise ValueError(
                f"schema_version {str(version)[:20]!r}: this mutguard reads schema_version "
                f"{SCHEMA_VERSION} reports (docs/architecture.md, Report contract); scan again "
                "with this version"
            )
        raw_checks = data.get("checks") or {}
        if not isinstance(raw_checks, dict):
            raise ValueError("checks: expected an object of check metadata by check id")
        checks = {check_id: _summary(check_id, summary) for check_id, summary in raw_checks.items()}
        reasons = data.get("platform_reasons", [])
        if not isinstance(reasons, list):
            raise ValueError("platform_reasons: expected a list of texts")
        data = {k: v for k, v in data.items() if k not in ("checks", "platform_reasons")}
        clusters = data.get("clusters")
        if isinstance(clusters, list):
            data["clusters"] = [
                _with_reasons(_with_checks(cluster, checks), reasons) for cluster in clusters
            ]
        return data

    @classmethod
    def _as_written(cls, json_schema: JsonSchemaValue) -> None:
        # Every report written carries schema_version, and a reader needs it before anything
        # else: required in the schema of what is written, while building a Report (or reading
        # one) may still leave it to its default.
        json_schema["required"] = ["schema_version", *json_schema.get("required", [])]

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)
