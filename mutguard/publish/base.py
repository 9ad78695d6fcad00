"""The one interface every sink implements, and what it is given.

A sink turns a `Notice` (the clusters worth telling about, with what changed) into `Outgoing`
items: exactly what it would send, with no secret in them, so a dry run can show them. It then
delivers one item per call; `deliver` raises RetryableError for what may pass on a later try
and DeliveryError for what will not. Retrying, pacing between items and collecting results is
the dispatcher's (pipeline.py); a sink fetches its secrets only in `deliver`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mutguard.errors import ConfigurationError
from mutguard.models import Report
from mutguard.publish.retry import RetryPolicy
from mutguard.publish.secrets import Redactor, SecretSource
from mutguard.state import ClusterChange

Json = dict[str, Any]


@dataclass(frozen=True)
class Notice:
    """What to tell: `items` are the clusters worth a message, each with its change since the
    last run. In digest mode every cluster is an item, news or not."""

    report: Report
    items: tuple[ClusterChange, ...]
    digest: bool = False


@dataclass(frozen=True)
class Outgoing:
    """One message as it will be sent (the JSON body, or the e-mail's parts)."""

    summary: str
    payload: Json


@dataclass
class SinkResult:
    sink: str
    ok: bool
    sent: int = 0
    planned: int = 0
    error: str | None = None
    dry_run: bool = False
    outgoing: list[Outgoing] = field(default_factory=list)
    parked: int = 0  # undelivered messages kept in the sink's dead-letter queue


@dataclass(frozen=True)
class ReportLinks:
    """Where this run's stored report is read (publish/reports/__init__.py): the HTML page for
    people, the JSON report for tools. A signed link is a secret for as long as it lasts."""

    html: str
    json: str
    signed: bool = False


@dataclass(frozen=True)
class SinkContext:
    """What every sink gets besides its own options."""

    secrets: SecretSource
    redactor: Redactor
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    report_links: ReportLinks | None = None


class Sink(Protocol):
    """A sink that takes messages, not only findings, also has `render_digest(digest) ->
    list[Outgoing]` for a scheduled run's fleet digest (mutguard.publish.fleet)."""

    name: str

    def render(self, notice: Notice) -> list[Outgoing]: ...

    def deliver(self, item: Outgoing) -> None: ...


class DeadLetter(Protocol):
    """Where a sink keeps what it could not deliver (a queue sink's dead-letter queue). A sink
    that has one sets its `dead_letter` attribute; the sink still counts as failed."""

    def deliver(self, item: Outgoing) -> None: ...


class SinkOptions(BaseModel):
    """Base of each sink's options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


OptionsT = TypeVar("OptionsT", bound=SinkOptions)


def with_report_link(options: OptionsT, context: SinkContext) -> OptionsT:
    """A human-facing sink's options as it renders: `report_url` (its "Full report" link) is
    this run's stored HTML report when there is one, else the sink's own setting."""
    if context.report_links is None:
        return options
    return options.model_copy(update={"report_url": context.report_links.html})


def parse_options(model: type[OptionsT], sink: str, options: Mapping[str, Any]) -> OptionsT:
    if not isinstance(options, Mapping):
        raise ConfigurationError(
            f"sink {sink}: options must be a mapping, not {type(options).__name__}"
        )
    try:
        return model.model_validate(dict(options))
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'options'}: {e['msg']}" for e in err.errors()
        )
        raise ConfigurationError(f"sink {sink}: {problems}") from None
