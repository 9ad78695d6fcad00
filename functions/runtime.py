"""What every cloud's function does once its trigger is parsed: fan out, scan, publish.

The handlers (aws_lambda/, gcp/, azure/) stay thin: they turn their trigger into an
InvokePayload, call `fan_out` or `run_scan`, and hand the result to their platform. Settings
come from the environment (Lambda variables, Cloud Functions variables, Azure app settings):

    MUTGUARD_TARGETS      JSON list of targets for a dispatch that names none
    MUTGUARD_REGIONS      comma-separated AWS regions for EKS targets without one
    MUTGUARD_ROLE_ARN     the read-only role in each AWS account, with {account} in it
    MUTGUARD_EXTERNAL_ID  the external id that role's trust policy asks for
    MUTGUARD_SINKS        comma-separated sinks a payload publishes to when it names none
    MUTGUARD_SINKS_CONFIG YAML text of the `sinks:` list (mutguard.publish.cli); secrets in it
                          are references into the cloud's secret store
    MUTGUARD_STATE_STORE  dynamodb:TABLE | gcs:BUCKET/PREFIX | azure-table:TABLE; without one
                          nothing is remembered, so every published run is a digest, and a
                          scheduled run sends no fleet digest
    MUTGUARD_GKE_ENDPOINT, MUTGUARD_ARM_ENDPOINT  another endpoint for the GKE or ARM API
                          (Private Service Connect, a sovereign cloud)
    MUTGUARD_REPORT_STORE s3:BUCKET[/PREFIX] | gcs:BUCKET[/PREFIX] |
                          azure-blob:ACCOUNT_URL/CONTAINER[/PREFIX]: a published scan's JSON and
                          HTML report are stored there first, and alerts link to the HTML one
    MUTGUARD_REPORT_LINK_TTL  seconds the signed link lasts (60 to 604800, default 86400), or
                          `console`; MUTGUARD_REPORT_KMS_KEY the S3 SSE-KMS key
                          (mutguard.publish.reports)

No scan failure escapes `run_scan`: a target that cannot be read is in the report's errors and
in `failed_targets`, so a queue-driven handler retries exactly that target.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NamedTuple

from mutguard import clock
from mutguard.errors import ConfigurationError, InputError
from mutguard.functions.payload import (
    InvokePayload,
    PayloadError,
    RunPart,
    RunToFinish,
    Target,
    parse_payload,
)
from mutguard.sources import ClusterSource, ScanError

if TYPE_CHECKING:
    from mutguard.functions.result import ScanResult
    from mutguard.publish.base import ReportLinks
    from mutguard.publish.pipeline import SinkSpec
    from mutguard.publish.reports import LinkSetting

log = logging.getLogger("mutguard.functions")

Item = ClusterSource | ScanError


class DispatchError(RuntimeError):
    """Scan messages the queue did not take; raised so that the scheduler retries the dispatch."""


class ScanIncomplete(RuntimeError):
    """A scan message has to be delivered again: a target was not read or a sink failed."""


class Settings(NamedTuple):
    """The function's settings. A named tuple, as mutguard.provider_api's objects are: every
    scan makes one before its first cloud call, and defining one costs a fraction of a
    dataclass."""

    targets: tuple[Target, ...] = ()
    regions: tuple[str, ...] = ()
    role_arn: str | None = None
    external_id: str | None = None
    sinks: tuple[str, ...] = ()
    sinks_config: str | None = None
    state_store: str | None = None
    gke_endpoint: str | None = None
    arm_endpoint: str | None = None
    report_store: str | None = None
    report_link: LinkSetting | None = None
    report_kms_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        def value(name: str) -> str | None:
            return environ.get(name, "").strip() or None

        def csv(name: str) -> tuple[str, ...]:
            return tuple(p.strip() for p in (value(name) or "").split(",") if p.strip())

        return cls(
            targets=_configured_targets(value("MUTGUARD_TARGETS")),
            regions=csv("MUTGUARD_REGIONS"),
            role_arn=value("MUTGUARD_ROLE_ARN"),
            external_id=value("MUTGUARD_EXTERNAL_ID"),
            sinks=csv("MUTGUARD_SINKS"),
            sinks_config=value("MUTGUARD_SINKS_CONFIG"),
            state_store=value("MUTGUARD_STATE_STORE"),
            gke_endpoint=value("MUTGUARD_GKE_ENDPOINT"),
            arm_endpoint=value("MUTGUARD_ARM_ENDPOINT"),
            **_report_settings(value("MUTGUARD_REPORT_STORE"), value),
        )


def _report_settings(store: str | None, value: Callable[[str], str | None]) -> dict[str, Any]:
    """The report store's settings, their form checked now (each cloud's SDK loads later). The
    module that checks them loads only when a store is set: a function without one does not
    pay for it before its first cloud call."""
    if store is None:
        return {}
    from mutguard.publish import reports as archive

    try:
        archive.check_spec(store)
        link = archive.parse_link_setting(value(archive.LINK_ENV))
    except InputError as exc:
        raise ConfigurationError(str(exc)) from None
    return {"report_store": store, "report_link": link, "report_kms_key": value(archive.KMS_ENV)}


def _configured_targets(text: str | None) -> tuple[Target, ...]:
    if text is None:
        return ()
    try:
        payload = parse_payload({"action": "dispatch", "targets": json.loads(text)})
    except (json.JSONDecodeError, PayloadError) as exc:
        raise ConfigurationError(f"MUTGUARD_TARGETS is not a JSON list of targets: {exc}") from None
    return tuple(payload.targets)


def fan_out(
    payload: InvokePayload, settings: Settings, run_id: str | None = None
) -> list[InvokePayload]:
    """One `scan` payload per provider, account and region of a dispatch (its own targets, else
    the configured ones), carrying its publish settings. A publishing dispatch with a `run_id`
    and a state store is recorded there as a scheduled run first, before any scan is queued, and
    each scan carries its part of it (payload.RunPart): the worker that finishes the last part
    sends the fleet digest (mutguard/publish/fleet.py). When the run before it has no digest
    sent (a part never finished), one `finish_run` follow-up for it comes after the scans."""
    targets = payload.targets or list(settings.targets)
    if not targets:
        raise ConfigurationError(
            "nothing to dispatch: the payload names no targets and MUTGUARD_TARGETS is not set"
        )
    groups: dict[tuple[str, str, str | None], list[Target]] = {}
    for target in targets:
        groups.setdefault(target.group, []).append(target)
    scans = [replace(payload, action="scan", targets=_covering(g)) for g in groups.values()]
    if run_id is None or not payload.publish:
        return scans
    if settings.state_store is None:
        log.info("run %s: no MUTGUARD_STATE_STORE, so no fleet digest", run_id)
        return scans
    parts, started_at = len(scans), clock.now()
    follow_up = _begin_run(settings.state_store, run_id, parts, started_at)
    queued = [
        replace(scan, run=RunPart(run_id, part, parts, started_at.isoformat()))
        for part, scan in enumerate(scans, start=1)
    ]
    if follow_up is not None:
        log.info("run %s: the run before it, %s, has no fleet digest yet", run_id, follow_up)
        queued.append(
            InvokePayload(
                action="finish_run", publish=True, sinks=payload.sinks, run=RunToFinish(follow_up)
            )
        )
    return queued


def _begin_run(store: str, run_id: str, parts: int, started_at: datetime.datetime) -> str | None:
    """Record the run's part count; the run before it that is due a follow-up, if any.
    DispatchError when the store cannot, so that the dispatch is retried rather than queueing
    parts no one can count."""
    from mutguard.errors import StoreError
    from mutguard.publish.stores import open_store

    try:
        return open_store(store).begin_run(run_id, parts, started_at)
    except (InputError, StoreError) as exc:
        raise DispatchError(f"run {run_id} not recorded, nothing queued: {exc}") from None


def _covering(group: list[Target]) -> list[Target]:
    """A target naming no cluster covers its whole region: the named ones in it are redundant."""
    if all(target.cluster for target in group):
        return group
    return [replace(group[0], cluster=None)]


def run_scan(
    payload: InvokePayload,
    settings: Settings,
    now: Callable[[], datetime.datetime] = clock.now,
) -> ScanResult:
    """Scan every target of a `scan` payload, then publish when it asks to."""
    items: list[Item] = []
    failed: list[Target] = []
    for target in payload.targets:
        found = _collect(target, payload.include_rbac, settings)
        if any(isinstance(item, ScanError) for item in found):
            failed.append(target)
        items.extend(found)
    # Imported once the clusters are read: the checks, report models and the result are not
    # needed before, and a cold start reaches the first cloud call sooner without them.
    from mutguard.functions.result import ScanResult
    from mutguard.scan import build_report

    result = ScanResult(report=build_report(items, now()), failed_targets=failed)
    if payload.publish:
        links = _store_report(result, payload, settings) if settings.report_store else None
        _publish(result, payload, settings, links)
        if payload.run is not None:
            _finish_part(result, payload, payload.run, settings)
    return result


def _store_report(
    result: ScanResult, payload: InvokePayload, settings: Settings
) -> ReportLinks | None:
    """Store the report for the alerts to link to; their links, or None when it failed. A
    failure is the result's publish_error (the message is retried), and the alerts still go
    out, without the link: a broken report store must not silence them."""
    from mutguard.publish.reports import (
        ReportArchiveError,
        group_label,
        open_archive,
        store_report,
    )
    from mutguard.publish.stores import report_history

    assert settings.report_store is not None and settings.report_link is not None
    try:
        archive = open_archive(settings.report_store, settings.report_kms_key)
        history = (
            report_history(settings.state_store, result.report) if settings.state_store else None
        )
        group = group_label([target.group for target in payload.targets])
        result.stored_report = store_report(
            result.report, archive, settings.report_link, group, history
        )
    except (InputError, ReportArchiveError) as exc:
        result.add_publish_error(f"report not stored: {exc}")
        log.error("report not stored: %s", exc)
        return None
    log.info("stored the report at %s", result.stored_report.html_location)
    return result.stored_report.links


def _collect(target: Target, include_rbac: bool, settings: Settings) -> list[Item]:
    """The target's clusters; any failure becomes a ScanError naming the target."""
    from mutguard.providers import PROVIDERS

    try:
        plugin = PROVIDERS.get(target.provider)
        collect = plugin.collector_module().collect
        options = plugin.invoke.options(target, include_rbac, settings)
        return list(collect(options))
    except InputError as exc:
        return [ScanError(scope=target.label, message=str(exc))]
    except ImportError as exc:  # this cloud's package was built without that provider's SDK
        message = f"provider {target.provider} is not installed in this function ({exc.name})"
        return [ScanError(scope=target.label, message=message)]
    except Exception as exc:  # one target's surprise must not hide the others' findings
        log.exception("scanning %s failed", target.label)
        return [ScanError(scope=target.label, message=f"internal error: {type(exc).__name__}")]


def _publish(
    result: ScanResult,
    payload: InvokePayload,
    settings: Settings,
    report_links: ReportLinks | None = None,
) -> None:
    """Send what changed; a configuration or store problem is the result's publish_error."""
    from mutguard.publish.pipeline import PublishError, run_publishing
    from mutguard.publish.stores import open_store

    try:
        store = settings.state_store
        result.published = run_publishing(
            result.report,
            _sink_specs(payload, settings),
            (lambda: open_store(store)) if store else ForgetfulStore,
            digest=payload.digest or store is None,
            report_links=report_links,
            run_part=payload.run.key if payload.run else None,
        ).results
    except (InputError, PublishError) as exc:
        result.add_publish_error(str(exc))  # after the report store's failure, if any
        log.error("publishing failed: %s", exc)


def _sink_specs(payload: InvokePayload, settings: Settings) -> list[SinkSpec]:
    """The sinks a payload publishes to; InputError (ConfigurationError) when there are none
    or their configuration is bad."""
    from mutguard.publish.config import parse_sink_config, select_sinks

    selected = payload.sinks if payload.sinks is not None else list(settings.sinks)
    if not selected:
        raise ConfigurationError("publish: no sinks named and MUTGUARD_SINKS is not set")
    configured = (
        parse_sink_config(settings.sinks_config, "MUTGUARD_SINKS_CONFIG")
        if settings.sinks_config
        else []
    )
    return select_sinks(selected, configured)


def _finish_part(
    result: ScanResult, payload: InvokePayload, run: RunPart, settings: Settings
) -> None:
    """Record this scan as a finished part of its run; the worker that finishes the last one
    sends the fleet digest. A store or sink failure is the result's publish_error, so the
    message is delivered again and the part recorded again (it counts once)."""
    from mutguard.errors import StoreError
    from mutguard.publish.fleet import finish_part
    from mutguard.publish.stores import open_store

    if settings.state_store is None:  # a dispatcher with a store, a worker without one
        log.warning("run %s: no MUTGUARD_STATE_STORE, so no fleet digest", run.id)
        return
    try:
        specs = _sink_specs(payload, settings)
        store = open_store(settings.state_store)
        sent = finish_part(store, run.id, run.part, run.started, result.report, specs)
    except (InputError, StoreError) as exc:
        failed = f"fleet digest of run {run.id}: {exc}"
        result.add_publish_error(failed)
        log.error("%s", failed)
        return
    result.fleet_digest = sent or []


def finish_run(payload: InvokePayload, settings: Settings) -> str | None:
    """A `finish_run` follow-up: the digest of the run it names, unless that was sent
    (fleet.finish_run). Why the message has to be delivered again, in one line, or None."""
    from mutguard.errors import StoreError
    from mutguard.publish.fleet import finish_run as send_follow_up
    from mutguard.publish.stores import open_store

    assert isinstance(payload.run, RunToFinish)
    run_id = payload.run.id
    if settings.state_store is None:  # a dispatcher with a store, a worker without one
        log.warning("run %s: no MUTGUARD_STATE_STORE, so no fleet digest", run_id)
        return None
    try:
        specs = _sink_specs(payload, settings)
        sent = send_follow_up(open_store(settings.state_store), run_id, specs) or []
    except (InputError, StoreError) as exc:
        log.error("fleet digest of run %s: %s", run_id, exc)
        return f"fleet digest of run {run_id}: {exc}"
    failed = [f"fleet digest to sink {r.sink} failed: {r.error}" for r in sent if not r.ok]
    return "; ".join(failed) or None


class ForgetfulStore:
    """No memory between runs (no MUTGUARD_STATE_STORE): every run is a digest, and a scheduled
    run has no fleet digest (no parts can be counted)."""

    def load(self, keys: Iterable[str]) -> dict:
        return {}

    def save(self, states: Mapping) -> None:
        return None

    def load_suppressions(self) -> str | None:
        return None

    def save_suppressions(self, document: str) -> None:
        raise ConfigurationError("set MUTGUARD_STATE_STORE to keep suppressions")

    def claim(self, keys: Iterable[Any]) -> set[Any]:
        # Nothing is shared between runs, so nothing can be contended: each run sends its own
        # whole digest.
        return set(keys)

    def release(self, keys: Iterable[Any]) -> None:
        return None

    def mark_delivered(self, keys: Iterable[Any]) -> None:
        return None

    def delivered(self, keys: Iterable[Any]) -> set[Any]:
        return set()


def result_body(result: ScanResult) -> dict[str, Any]:
    """What an on-demand audit returns: the JSON report and how publishing went."""
    return {
        "report": json.loads(result.report.to_json()),
        "failed_targets": [t.label for t in result.failed_targets],
        "published": [
            {"sink": r.sink, "ok": r.ok, "sent": r.sent, "error": r.error} for r in result.published
        ],
        "publish_error": result.publish_error,
        "stored_report": (
            {"json": stored.json_location, "html": stored.html_location}
            if (stored := result.stored_report)
            else None
        ),
    }


def retry_reason(result: ScanResult) -> str | None:
    """Why a queued scan has to run again (a target not read, findings not delivered), in one
    line naming them, or None when it is done. Tokens never reach it: errors are redacted."""
    reasons = []
    if result.failed_targets:
        reasons.append("not scanned: " + ", ".join(t.label for t in result.failed_targets))
    if result.publish_error is not None:
        reasons.append(f"not published: {result.publish_error}")
    reasons += [f"sink {r.sink} failed: {r.error}" for r in result.published if not r.ok]
    reasons += [
        f"fleet digest to sink {r.sink} failed: {r.error}" for r in result.fleet_digest if not r.ok
    ]
    return "; ".join(reasons) or None
