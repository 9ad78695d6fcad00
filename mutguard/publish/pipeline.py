"""Choosing sinks by configuration, sending to each, and collecting what happened.

`SINKS` (publish/sinks/__init__.py) maps a sink kind to the module that implements it; each such
module has `build(name, options, context) -> Sink`.
`publish()` renders and delivers per sink: a sink that fails (after its bounded retries) is
reported in its SinkResult and the others still deliver; when the sink has a `dead_letter`
(base.DeadLetter), what it did not deliver is handed there, and the sink still counts as
failed. `notify()` is the whole run: load the last state, work out what changed, claim what
it is about to send, publish, and save the new state only when every sink delivered, so that
nothing a failed sink should have said is forgotten.

Claims (mutguard.store, "Claims") make two runs of the same report that overlap send each
alert once: a cluster whose alert another run claimed is left to that run, in the notice and
in the state saved, unless that run marked the alert delivered (then only the notice leaves it
out); a run whose sink failed releases its claims, so the next run says it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import Any

from mutguard.errors import ConfigurationError, InputError, StoreError
from mutguard.models import Report, cluster_key
from mutguard.publish.base import (
    DeadLetter,
    Notice,
    Outgoing,
    ReportLinks,
    Sink,
    SinkContext,
    SinkResult,
)
from mutguard.publish.retry import call_with_retry
from mutguard.publish.secrets import Redactor, SecretRefs
from mutguard.publish.sinks import SINKS
from mutguard.state import ClusterChange, ClusterState, changes, next_state
from mutguard.store import DIGEST_CLAIM, ClaimKey, StateStore
from mutguard.suppressions import Suppression, stored_suppressions

log = logging.getLogger("mutguard.publish")


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
    """All sinks, or ConfigurationError naming the first bad one (nothing is sent with a bad
    config)."""
    labels = [spec.label for spec in specs]
    if duplicates := sorted({label for label in labels if labels.count(label) > 1}):
        raise ConfigurationError(f"sink names must be unique: {', '.join(duplicates)}")
    return [_build(spec, context) for spec in specs]


def sink_module(spec: SinkSpec) -> ModuleType:
    """The module of a sink's kind; ConfigurationError for an unknown kind, MissingDependency when
    what it needs is not installed."""
    if spec.kind not in SINKS:
        known = ", ".join(SINKS.names())
        raise ConfigurationError(f"sink {spec.label}: unknown kind {spec.kind!r} (known: {known})")
    return SINKS.get(spec.kind)


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
    return [deliver_items(sink, partial(sink.render, told), context, dry_run) for sink in sinks]


def deliver_items(
    sink: Sink, render: Callable[[], list[Outgoing]], context: SinkContext, dry_run: bool = False
) -> SinkResult:
    """Render, then deliver each item with retries (a failed one goes to the sink's dead-letter
    queue): one SinkResult, whatever fails."""
    result = SinkResult(sink=sink.name, ok=True, dry_run=dry_run)
    outgoing: list[Outgoing] = []
    try:
        outgoing = render()
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


class PublishError(Exception):
    """Publishing could not run: a sink's configuration, the suppressions, or (`store`) the state
    store, which may also fail after sending. Its text has every secret read this run blanked."""

    def __init__(self, message: str, *, store: bool) -> None:
        super().__init__(message)
        self.store = store


def run_publishing(
    report: Report,
    specs: Sequence[SinkSpec],
    open_store: Callable[[], StateStore],
    *,
    suppressions: Sequence[Suppression] | None = None,
    digest: bool = False,
    dry_run: bool = False,
    report_links: ReportLinks | None = None,
    run_part: str | None = None,
) -> RunOutcome:
    """The one publishing run of the command line and the functions: build the sinks (a bad
    configuration stops it before the store is touched), open the store, take the suppressions
    given or else the store's, and notify. `report_links`: where the function stored this
    report, for the alerts to link to; signed ones are blanked out of every error. `run_part`:
    the part of a scheduled run this report is (see claim_keys)."""
    redactor = Redactor()
    if report_links is not None and report_links.signed:
        redactor.add(report_links.html)
        redactor.add(report_links.json)
    context = SinkContext(SecretRefs(redactor), redactor, report_links=report_links)
    try:
        sinks = build_sinks(specs, context)
        store = open_store()
        return notify(
            report,
            store,
            sinks,
            context,
            suppressions=stored_suppressions(store) if suppressions is None else suppressions,
            digest=digest,
            dry_run=dry_run,
            run_part=run_part,
        )
    except StoreError as exc:
        raise PublishError(redactor.redact(str(exc)), store=True) from None
    # A bad stored suppressions document is an InputError (suppressions.SuppressionError).
    except InputError as exc:
        raise PublishError(redactor.redact(str(exc)), store=False) from None


@dataclass(frozen=True)
class RunOutcome:
    changes: list[ClusterChange]
    results: list[SinkResult]
    state_saved: bool
    # Clusters (keys) whose alert another run of the same report claimed: it sends them, this
    # run did not, and saved them only when the other run had marked the alert delivered
    # (state_saved is about the others). In digest mode, every cluster when the digest was
    # claimed.
    left_to_another_run: tuple[str, ...] = ()

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
    run_part: str | None = None,
) -> RunOutcome:
    """Alert on what changed since the last run (or send the digest) and remember this run.

    What is about to be sent is claimed first (StateStore.claim): when another run of the same
    report holds a cluster's claim, that cluster is not told about here, and its state is saved
    only when that run marked the alert delivered (saving before would forget an alert the other
    run may yet fail to send). What was delivered is marked so before the states are saved. A
    dry run claims nothing."""
    previous = store.load(cluster_key(c) for c in report.clusters)
    found = changes(previous, report, suppressions)
    states = next_state(previous, report, suppressions)
    wanted = {} if dry_run else claim_keys(report, previous, states, found, digest, run_part)
    won, lost, pending = _claim(store, wanted)
    handled = [c for c in found if c.key not in lost]
    if digest and lost:  # another run sends this digest
        results = [SinkResult(sink=sink.name, ok=True) for sink in sinks]
    else:
        results = publish(report, handled, sinks, context, digest=digest, dry_run=dry_run)
    save = not dry_run and all(r.ok for r in results)
    if save:
        if won:
            store.mark_delivered(won)
        if kept := {key: state for key, state in states.items() if key not in pending}:
            store.save(kept)
    elif won:  # not delivered: let the next run claim and send it
        _release(store, won)
    return RunOutcome(changes=found, results=results, state_saved=save, left_to_another_run=lost)


def claim_keys(
    report: Report,
    previous: Mapping[str, ClusterState],
    states: Mapping[str, ClusterState],
    cluster_changes: Sequence[ClusterChange],
    digest: bool,
    run_part: str | None = None,
) -> dict[ClaimKey, tuple[str, ...]]:
    """What a run claims before sending, and the clusters each claim stands for: in alert mode
    one claim per cluster with news, in digest mode one for the whole digest.

    A claim names the report by its generated_at and a fingerprint, so that scans which share a
    generated_at (`--as-of`) but differ do not contend. In alert mode the fingerprint is of the
    cluster's state before (`previous`) and after (`states`): runs that loaded the same state
    contend, and a run that loaded what the winner saved has no news and claims nothing. A
    digest is sent whatever the state, so its fingerprint is of the report alone.

    A part of a scheduled run (`run_part`, "<run id>/<part>") is scanned anew when its message
    is redelivered, into a report with another generated_at and, in the state after, another
    MUT history point. So its claims name the part instead: an alert's with a fingerprint of
    the state before alone, so that every delivery of the part that loaded the same state
    contends for one alert per cluster; a digest's with nothing more, one digest per part."""
    if run_part is not None:
        if digest:
            return {(DIGEST_CLAIM, run_part): tuple(c.key for c in cluster_changes)}
        return {
            (c.key, f"{run_part}/{_fingerprint(previous.get(c.key))}"): (c.key,)
            for c in cluster_changes
            if c.has_news
        }
    stamp = report.generated_at.isoformat()
    if digest:
        whole = _digest_of(report.to_json())
        return {(DIGEST_CLAIM, f"{stamp}/{whole}"): tuple(c.key for c in cluster_changes)}
    return {
        (c.key, f"{stamp}/{_fingerprint(previous.get(c.key), states.get(c.key))}"): (c.key,)
        for c in cluster_changes
        if c.has_news
    }


def _fingerprint(*states: ClusterState | None) -> str:
    """Of these states' JSON."""
    return _digest_of(
        json.dumps([_dict_of(s) for s in states], sort_keys=True, separators=(",", ":"))
    )


def _digest_of(text: str) -> str:
    """The first 16 hex digits of SHA-256."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dict_of(state: ClusterState | None) -> dict[str, Any] | None:
    return None if state is None else state.to_dict()


def _claim(
    store: StateStore, wanted: Mapping[ClaimKey, tuple[str, ...]]
) -> tuple[tuple[ClaimKey, ...], tuple[str, ...], frozenset[str]]:
    """(the claims this run won, the clusters left to another run, those of them whose alert
    that run has not marked delivered: their state is its to save)."""
    if not wanted:
        return (), (), frozenset()
    won: set[ClaimKey] = store.claim(wanted)
    held = [claim for claim in wanted if claim not in won]
    lost = tuple(key for claim in held for key in wanted[claim])
    if not held:
        return tuple(wanted), (), frozenset()
    delivered = store.delivered(held)
    pending = frozenset(key for claim in held if claim not in delivered for key in wanted[claim])
    log.info(
        "%d cluster(s) left to another run of the same report, %d of them delivered already",
        len(lost),
        len(lost) - len(pending),
    )
    return tuple(claim for claim in wanted if claim in won), lost, pending


def _release(store: StateStore, won: Sequence[ClaimKey]) -> None:
    """Give back what this run claimed but did not deliver. Failing to is logged, not raised:
    the sink's failure is what the run reports, and the state is not saved either way, so the
    next report alerts again (only a rerun of this same report would find the claims taken)."""
    try:
        store.release(won)
    except StoreError as err:
        log.warning("could not release this run's claims: %s", err)
