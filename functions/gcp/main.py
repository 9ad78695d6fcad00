"""Cloud Functions (2nd gen) entry points: `on_message` behind the scan topic, `audit` over HTTP.

`on_message` gets every message of the topic MUTGUARD_TOPIC as a CloudEvent of type
google.cloud.pubsub.topic.v1.messagePublished, whose data is MessagePublishedData:
{"message": {"data": <base64>, "attributes": {...}, "messageId", "publishTime"}, "subscription"}.
The message data is an invoke payload (payload.py):
- a dispatch (Cloud Scheduler publishes {"action": "dispatch"}) publishes one scan message per
  provider, project and location back to the topic, each with the attribute run_id (the
  dispatch message's id); with MUTGUARD_STATE_STORE, a publishing dispatch records the run
  first and each scan carries its part of it, for the one fleet digest (publish/fleet.py);
- a scan reads its targets and publishes what it found;
- a `finish_run` (a dispatch's follow-up for the run before it, whose digest was not sent)
  sends that run's fleet digest of what finished, unless it was sent (runtime.finish_run).
Returning acknowledges the message. Raising answers 500, and Eventarc delivers the message again
when the trigger's retry policy is on: that is what a failed publish of scan messages, a target
that could not be read and findings that did not reach a sink do. A malformed message or a
setting that is wrong is logged and acknowledged, since delivering it again cannot fix it.

`audit` (IAM-authenticated HTTP) takes a POSTed payload: a scan answers 200 with the report and
how publishing went, a dispatch 202 {"run_id", "dispatched"}; a bad payload (or a `finish_run`,
which only a dispatcher queues) 400 naming the field, with nothing run; another method 405.

Logs are one JSON object per line on stdout, which Cloud Logging reads as structured entries
(`severity`, `message`; the other fields land in jsonPayload).

The deployed source has a main.py of its own that imports `audit` and `on_message` from here.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from mutguard.errors import ConfigurationError
from mutguard.functions.payload import RUN_ID, InvokePayload, PayloadError, parse_payload
from mutguard.functions.runtime import (
    DispatchError,
    ScanIncomplete,
    Settings,
    fan_out,
    finish_run,
    result_body,
    retry_reason,
    run_scan,
)

TOPIC_SETTING = "MUTGUARD_TOPIC"
# A dispatch publishes within about a minute (the function's default timeout), retrying what the
# client library itself retries; its default would keep trying for ten.
PUBLISH_TIMEOUT_SECONDS = 30.0
RESULT_TIMEOUT_SECONDS = 45.0

ALLOW_POST = {"Allow": "POST"}

Response = tuple[dict[str, Any], int] | tuple[dict[str, Any], int, dict[str, str]]


def log(severity: str, message: str, **fields: Any) -> None:
    """One structured log entry: a JSON line on stdout."""
    print(json.dumps({"severity": severity, "message": message, **fields}), flush=True)


@functions_framework.cloud_event
def on_message(cloud_event: CloudEvent) -> None:
    message = _pubsub_message(cloud_event.data)
    attributes = message.get("attributes") or {}
    # Only strings are logged: whatever else an envelope holds is the sender's data.
    context = {
        "message_id": _string(message.get("messageId")),
        "run_id": _string(attributes.get("run_id")) if isinstance(attributes, dict) else None,
    }
    try:
        if not isinstance(attributes, dict):
            raise PayloadError("attributes", "the Pub/Sub message attributes are not an object")
        payload = parse_payload(_message_data(message))
        settings = Settings.from_env()
        if payload.action == "dispatch":
            # The message id: a redelivered dispatch is the same run, with one fleet digest.
            run_id, count = dispatch(payload, settings, context["message_id"])
            # The scan messages' entries then carry the same run_id.
            log("INFO", f"dispatched {count} messages", **{**context, "run_id": run_id})
            return
    except PayloadError as exc:
        log("ERROR", f"malformed message acknowledged: {exc}", **context, **exc.body())
        return
    except ConfigurationError as exc:
        log("ERROR", f"message acknowledged, the function is misconfigured: {exc}", **context)
        return
    if payload.action == "finish_run":
        _finish_run(payload, settings, context)
        return
    _scan(payload, settings, context)


def _finish_run(payload: InvokePayload, settings: Settings, context: Mapping[str, Any]) -> None:
    reason = finish_run(payload, settings)
    if reason is None:
        log("INFO", "fleet digest follow-up done", **context)
        return
    log("ERROR", f"fleet digest follow-up incomplete, to be delivered again: {reason}", **context)
    raise ScanIncomplete(reason)


def _scan(payload: InvokePayload, settings: Settings, context: Mapping[str, Any]) -> None:
    result = run_scan(payload, settings)
    summary = {
        "clusters": len(result.report.clusters),
        "failed_targets": [t.label for t in result.failed_targets],
        "published": [{"sink": r.sink, "ok": r.ok, "sent": r.sent} for r in result.published],
    }
    reason = retry_reason(result)
    if reason is None:
        log("INFO", "scanned", **context, **summary)
        return
    log("ERROR", f"scan incomplete, to be delivered again: {reason}", **context, **summary)
    # Raised only now, after every readable target was scanned and its findings published.
    # The retry scans and publishes the whole message again: without MUTGUARD_STATE_STORE the
    # sinks get the same findings twice; with it, only what changed in between.
    raise ScanIncomplete(reason)


def _pubsub_message(data: Any) -> dict[str, Any]:
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, dict) else {}


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _message_data(message: Mapping[str, Any]) -> bytes:
    try:
        return base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, TypeError) as exc:
        raise PayloadError("", f"the Pub/Sub message data is not base64: {exc}") from None


def dispatch(
    payload: InvokePayload, settings: Settings, run_id: str | None = None
) -> tuple[str, int]:
    """Publish one scan message per provider, project and location; (run_id, how many). The
    run id is the given one when it is one a payload may carry, else a new one."""
    topic = os.environ.get(TOPIC_SETTING, "").strip()
    if not topic:
        raise ConfigurationError(f"{TOPIC_SETTING} is not set: the topic scan messages go to")
    run_id = run_id if run_id and RUN_ID.match(run_id) else uuid.uuid4().hex
    scans = fan_out(payload, settings, run_id)
    _publish(topic, scans, run_id)
    return run_id, len(scans)


def _publish(topic: str, scans: list[InvokePayload], run_id: str) -> None:
    """Every message is published, or DispatchError says how many were not. A redelivered
    dispatch publishes all of them again: the groups that had made it are scanned twice."""
    # Imported here: a scan message, most of what this function gets, never publishes one.
    from google.api_core import exceptions as api_exceptions
    from google.api_core import retry as retries
    from google.cloud.pubsub_v1 import PublisherClient

    from mutguard.publish.sinks.pubsub import RETRYABLE_ERRORS

    retry = retries.Retry(
        predicate=retries.if_exception_type(
            *(getattr(api_exceptions, name) for name in RETRYABLE_ERRORS)
        ),
        initial=0.1,
        maximum=5.0,
        timeout=30.0,
    )
    failures: list[Exception] = []
    with PublisherClient() as publisher:
        futures = [
            publisher.publish(
                topic,
                scan.to_message().encode(),
                retry=retry,
                timeout=PUBLISH_TIMEOUT_SECONDS,
                run_id=run_id,
            )
            for scan in scans
        ]
        for future in futures:
            try:
                future.result(timeout=RESULT_TIMEOUT_SECONDS)
            except Exception as exc:  # whatever went wrong, the others are still waited for
                failures.append(exc)
    if failures:
        raise DispatchError(
            f"{len(failures)} of {len(scans)} scan messages were not published to {topic}: "
            f"{failures[0]}"
        )


@functions_framework.http
def audit(request: flask.Request) -> Response:
    if request.method != "POST":
        return _error(405, f"{request.method} is not served: POST a payload"), 405, ALLOW_POST
    try:
        payload = direct_payload(request.get_data())
    except PayloadError as exc:
        return exc.body(), 400
    try:
        settings = Settings.from_env()
        if payload.action == "dispatch":
            run_id, count = dispatch(payload, settings)
            log("INFO", f"dispatched {count} messages", run_id=run_id)
            return {"run_id": run_id, "dispatched": count}, 202
    except ConfigurationError as exc:
        log("ERROR", f"the function is misconfigured: {exc}")
        return _error(500, str(exc)), 500
    except DispatchError as exc:
        log("ERROR", str(exc))
        return _error(502, str(exc)), 502
    return result_body(run_scan(payload, settings)), 200


def direct_payload(raw: bytes) -> InvokePayload:
    """A POSTed scan or dispatch: a `finish_run` comes only from a dispatcher, on the topic."""
    payload = parse_payload(raw)
    if payload.action == "finish_run":
        raise PayloadError(
            "action", "finish_run is queued by a dispatch: POST a scan or a dispatch"
        )
    return payload


def _error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}
