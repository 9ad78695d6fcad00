"""Azure Functions entry points (Python v2 programming model): dispatch, scan, audit.

- `scheduled_dispatch` (timer, schedule in the app setting MUTGUARD_SCHEDULE) fans the
  configured targets out: one scan message per provider, subscription and region, written to
  the storage queue MUTGUARD_QUEUE_NAME (connection AzureWebJobsStorage) by a queue output
  binding, which takes a list: the host queues each string once the function has returned.
  With MUTGUARD_STATE_STORE the run is recorded first and each scan carries its part of it,
  for the one fleet digest (publish/fleet.py).
- `scan_target` (queue trigger on that queue) scans one message's targets and publishes what it
  found; a `finish_run` message (a dispatch's follow-up for the run before it, whose digest was
  not sent) sends that run's fleet digest of what finished, unless it was sent. It raises when
  a target could not be read or a sink did not take the findings or the digest: the host then
  makes the message visible again and, after host.json's maxDequeueCount (5 unless set), moves
  it to the poison queue `<queue>-poison`.
- `audit` (HTTP, route "audit", function key) takes a POSTed payload: a scan answers 200 with
  the report and how publishing went, a dispatch 202 {"run_id", "dispatched"} and queues through
  the same output binding; a bad payload (or a `finish_run`, which only a dispatch queues) 400
  naming the field, with nothing run; another method 405 (every method reaches the function, so
  that it can say which one it takes).

ARM is called as the app's managed identity (DefaultAzureCredential finds App Service's
IDENTITY_ENDPOINT); MUTGUARD_ARM_ENDPOINT points at another ARM endpoint (a sovereign cloud).
Logs go through `logging`, which the Functions host sends to Application Insights.
"""

import json
import logging
import typing
import uuid
from typing import Any

import azure.functions as func

from mutguard.errors import ConfigurationError
from mutguard.functions.payload import InvokePayload, PayloadError, parse_payload
from mutguard.functions.runtime import (
    ScanIncomplete,
    Settings,
    fan_out,
    finish_run,
    result_body,
    retry_reason,
    run_scan,
)

QUEUE = "%MUTGUARD_QUEUE_NAME%"
CONNECTION = "AzureWebJobsStorage"
# What the schedules of the other clouds send (their Terraform): the configured targets.
# A scheduled run alerts (publish), as the AWS and GCP schedules ask in their payloads.
SCHEDULED_DISPATCH = {"action": "dispatch", "publish": True}
ALLOW_POST = {"Allow": "POST"}
# The worker checks each binding's annotation with typing_inspect, which takes typing.List[str]
# for a list of messages but not list[str]: with that, the function would not load.
Messages = func.Out[typing.List[str]]  # noqa: UP006

log = logging.getLogger("mutguard.functions.azure")
app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.timer_trigger(arg_name="timer", schedule="%MUTGUARD_SCHEDULE%", run_on_startup=False)
@app.queue_output(arg_name="messages", queue_name=QUEUE, connection=CONNECTION)
def scheduled_dispatch(timer: func.TimerRequest, messages: Messages) -> None:
    if timer.past_due:
        log.warning("the dispatch runs late: the schedule was missed")
    # A misconfigured app (no MUTGUARD_TARGETS) fails the run, where its monitoring shows it.
    dispatch(parse_payload(SCHEDULED_DISPATCH), Settings.from_env(), messages)


@app.queue_trigger(arg_name="message", queue_name=QUEUE, connection=CONNECTION)
def scan_target(message: func.QueueMessage) -> None:
    try:
        payload = parse_payload(message.get_body())
        if payload.action == "dispatch":
            raise PayloadError("action", "the scan queue takes scans; POST a dispatch to audit")
    except PayloadError as exc:
        # Raised, not dropped: a malformed message fails every try alike (it is refused before
        # anything runs) and then lands in <queue>-poison, where operators look for the queue's
        # failed messages, with its exact body.
        log.error("queue message %s is malformed: %s", message.id, exc)
        raise
    settings = Settings.from_env()
    if payload.action == "finish_run":
        reason = finish_run(payload, settings)
        done = "sent its run's fleet digest, or found it sent"
    else:
        result = run_scan(payload, settings)
        reason = retry_reason(result)
        done = f"scanned: {len(result.report.clusters)} clusters"
    if reason is None:
        log.info("queue message %s %s", message.id, done)
        return
    log.error(
        "queue message %s (try %s) incomplete, to be tried again: %s",
        message.id,
        message.dequeue_count,
        reason,
    )
    # Raised only now, after every readable target was scanned and its findings published.
    # A retry scans and publishes the whole message again: without MUTGUARD_STATE_STORE the
    # sinks get the same findings twice; with it, only what changed in between.
    raise ScanIncomplete(reason)


@app.route(route="audit", trigger_arg_name="request", auth_level=func.AuthLevel.FUNCTION)
@app.queue_output(arg_name="messages", queue_name=QUEUE, connection=CONNECTION)
def audit(request: func.HttpRequest, messages: Messages) -> func.HttpResponse:
    if request.method != "POST":
        message = f"{request.method} is not served: POST a payload"
        return _json({"error": {"status": 405, "message": message}}, 405, ALLOW_POST)
    try:
        payload = parse_payload(request.get_body())
        if payload.action == "finish_run":
            raise PayloadError(
                "action", "finish_run is queued by a dispatch: POST a scan or a dispatch"
            )
    except PayloadError as exc:
        return _json(exc.body(), 400)
    try:
        settings = Settings.from_env()
        if payload.action == "dispatch":
            run_id, count = dispatch(payload, settings, messages)
            return _json({"run_id": run_id, "dispatched": count}, 202)
    except ConfigurationError as exc:
        log.error("the function is misconfigured: %s", exc)
        return _json({"error": {"status": 500, "message": str(exc)}}, 500)
    return _json(result_body(run_scan(payload, settings)), 200)


def dispatch(payload: InvokePayload, settings: Settings, messages: Messages) -> tuple[str, int]:
    """Hand one scan message per provider, subscription and region to the output binding;
    (run_id, how many). The host queues them only if the function then succeeds."""
    run_id = uuid.uuid4().hex
    scans = fan_out(payload, settings, run_id)
    messages.set([scan.to_message() for scan in scans])
    log.info("dispatch %s: %d scan messages to queue", run_id, len(scans))
    return run_id, len(scans)


def _json(
    body: dict[str, Any], status: int, headers: dict[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body), status_code=status, headers=headers, mimetype="application/json"
    )
