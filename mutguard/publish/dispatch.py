"""Choosing sinks by configuration, sending to each, and collecting what happened.

`SINK_MODULES` maps a sink kind to the module that implements it; each such module has
`build(name, options, context) -> Sink`. Adding a sink is one module plus one line here.
`publish()` renders and delivers per sink: a sink that fails (after its bounded retries) is
reported in its SinkResult and the others still deliver; when the sink has a `dead_letter`
(base.DeadLetter), what it did not deliver is handed there, and the sink still counts as
failed. `notify()` is the whole run: load the last state, work out what changed, publish,
and save the new state only when every sink delivered, so that nothing a failed sink should
have said is forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any

from mutguard.models import Report
from mutguard.plugins import Plugin
from mutguard.publish.base import (
    ConfigError,
    DeadLetter,
    Notice,
    Outgoing,
    Sink,
    SinkContext,
    SinkResult,
)
from mutguard.publish.retry import call_with_retry
from mutguard.state import (
    ClusterChange,
    StateStore,
    Suppression,
    changes,
    cluster_key,
    next_state,
)

log = logging.getLogger("mutguard.publish")

SINK_MODULES = {
    "slack": Plugin("mutguard.publish.slack", "notify", imports_later={"slack_sdk": "slack-sdk"}),
    "teams": Plugin("mutguard.publish.teams"),
    "smtp": Plugin("mutguard.publish.smtp"),
    "webhook": Plugin("mutguard.publish.webhook"),
    "sqs": Plugin("mutguard.publish.sqs", "aws", imports_later={"boto3": "boto3"}),
    "sns": Plugin("mutguard.publish.sns", "aws", imports_later={"boto3": "boto3"}),
    "ses": Plugin("mutguard.publish.ses", "aws", imports_later={"boto3": "boto3"}),
    "pubsub": Plugin(
        "mutguard.publish.pubsub",
        "notify-gcp",
        imports_later={"google.cloud.pubsub_v1": "google-cloud-pubsub"},
    ),
    "azure-queue": Plugin(
        "mutguard.publish.azure_queue",
        "notify-azure",
        imports_later={"azure.storage.queue": "azure-storage-queue"},
    ),
}


@dataclass(frozen=True)
class SinkSpec:
    """One configured sink: `kind` picks the module, `name` labels it in results (default: the
    kind; two Slack channels are two specs with different names), `options` are its settings."""

    kind: str
    name: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.kind


def build_sinks(specs: Sequence[SinkSpec], context: SinkContext) -> list[Sink]:
    """All sinks, or ConfigError naming the first bad one (nothing is sent with a bad config)."""
    labels = [spec.label for spec in specs]
    if duplicates := sorted({label for label in labels if labels.count(label) > 1}):
        raise ConfigError(f"sink names must be unique: {', '.join(duplicates)}")
    return [_build(spec, context) for spec in specs]


def sink_module(spec: SinkSpec) -> ModuleType:
    """The module of a sink's kind; ConfigError for an unknown kind, MissingDependency when
    what it needs is not installed."""
    plugin = SINK_MODULES.get(spec.kind)
    if plugin is None:
        known = ", ".join(sorted(SINK_MODULES))
        raise ConfigError(f"sink {spec.label}: unknown kind {spec.kind!r} (known: {known})")
    return plugin.load(f"the {spec.kind} sink")


def _build(spec: SinkSpec, context: SinkContext) -> Sink:
    sink: Sink = sink_module(spec).build(spec.label, spec.options, context)
    return sink


def notice(report: Report, cluster_changes: Sequence[ClusterChange], digest: bool) -> Notice:
    """In alert mode only clusters with news; in digest mode every cluster."""
    items = tuple(c for c in cluster_changes if digest or c.has_news)
    return Notice(report=report, items=items, digest=digest)


def publish(
    report: Report,
    cluster_changes: Sequence[ClusterChange],
    sinks: Sequence[Sink],
    context: SinkContext,
    *,
    digest: bool = False,
    dry_run: bool = False,
) -> list[SinkResult]:
    """Send to every sink, one after the other; one result per sink, in order. A dry run
    renders what would be sent (in SinkResult.outgoing) and sends nothing."""
    told = notice(report, cluster_changes, digest)
    return [_publish_one(sink, told, context, dry_run) for sink in sinks]


def _publish_one(sink: Sink, told: Notice, context: SinkContext, dry_run: bool) -> SinkResult:
    result = SinkResult(sink=sink.name, ok=True, dry_run=dry_run)
    outgoing: list[Outgoing] = []
    try:
        outgoing = sink.render(told)
        result.planned = len(outgoing)
        if dry_run:
            result.outgoing = outgoing
            return result
        for item in outgoing:
            call_with_retry(partial(sink.deliver, item), context.retry)
            result.sent += 1
    except Exception as err:  # one sink's failure, whatever it is, must not stop the others
        result.ok = False
        result.error = _error_text(err, context)
        log.warning(
            "sink %s failed after %d of %d messages: %s",
            sink.name,
            result.sent,
            result.planned,
            result.error,
        )
        if dead_letter := getattr(sink, "dead_letter", None):
            _park(dead_letter, outgoing[result.sent :], result, context)
    return result


def _error_text(err: Exception, context: SinkContext) -> str:
    """What a sink's failure says, with every secret read this run blanked out: the one place
    sink errors are redacted, before they are logged, printed or kept in a SinkResult (sinks
    quote answers as they came, and a server may echo the webhook URL or token in them)."""
    return context.redactor.redact(str(err) or type(err).__name__)


def _park(
    dead_letter: DeadLetter, undelivered: list[Outgoing], result: SinkResult, context: SinkContext
) -> None:
    """Hand the messages a sink could not deliver to its dead-letter destination."""
    try:
        for item in undelivered:
            call_with_retry(partial(dead_letter.deliver, item), context.retry)
            result.parked += 1
    except Exception as err:  # the report must still say what happened to the rest
        reason = _error_text(err, context)
        took = f"{result.parked} of {len(undelivered)}"
        result.error = f"{result.error}; the dead-letter queue took {took}, then failed: {reason}"
    else:
        result.error = f"{result.error}; {result.parked} message(s) sent to the dead-letter queue"


@dataclass(frozen=True)
class RunOutcome:
    changes: list[ClusterChange]
    results: list[SinkResult]
    state_saved: bool

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def notify(
    report: Report,
    store: StateStore,
    sinks: Sequence[Sink],
    context: SinkContext,
    *,
    suppressions: Sequence[Suppression] = (),
    digest: bool = False,
    dry_run: bool = False,
) -> RunOutcome:
    """Alert on what changed since the last run (or send the digest) and remember this run."""
    previous = store.load(cluster_key(c) for c in report.clusters)
    found = changes(previous, report, suppressions)
    results = publish(report, found, sinks, context, digest=digest, dry_run=dry_run)
    save = not dry_run and all(r.ok for r in results)
    if save:
        store.save(next_state(previous, report, suppressions))
    return RunOutcome(changes=found, results=results, state_saved=save)
