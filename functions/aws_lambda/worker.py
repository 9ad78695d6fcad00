"""AWS Lambda worker: scan, then publish.

Two handlers:
- `mutguard.functions.aws_lambda.worker.handler`, the worker function's (terraform/modules/aws):
  an SQS batch from the event source mapping of MUTGUARD_QUEUE_URL (with
  ReportBatchItemFailures), each record one `scan` message from the dispatcher, or its
  `finish_run` follow-up for a run whose digest never went out (mutguard/publish/fleet.py),
  handled one after the other. A message whose target could not be scanned, whose publishing
  failed, or that is not a valid scan payload is returned in `batchItemFailures` (Lambda's
  partial batch response), so SQS redelivers only that message and, after the queue's
  maxReceiveCount, moves it to the dead-letter queue; nothing is dropped unnoticed. Every
  record is handled, whatever failed before it: the module's queue is a standard one, not FIFO.
  Returns {"batchItemFailures": [{"itemIdentifier": messageId}, ...]}. Any other event is a
  direct invoke, answered as `direct_handler` answers it, so the one deployed function also
  serves `aws lambda invoke`.
- `mutguard.functions.aws_lambda.worker.direct_handler`, direct invokes only
  (`aws lambda invoke --payload '{"action": "scan", "targets": [...]}'`): the scan runs now and
  the answer is {"statusCode": 200, "run_id": ..., "report": {...}, "failed_targets": [...],
  "published": [...], "publish_error": ...}. Any event that is not a valid scan payload, an SQS
  batch included, gets {"statusCode": 400, "error": {"status": 400, "field": ..., "message":
  ...}} and nothing runs.

Log lines are JSON (Powertools); a queued message logs under its `run_id` attribute (the
dispatcher's request id), so one scheduled run's lines share a correlation id, and a direct
invoke under its own request id.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

# The execution environment's init (this module) runs with the garbage collector off, and ends
# freezing all it loaded out of the collector's generations before turning it on again. What the
# init loads lives as long as the environment does, so no pass need ever walk it: the passes
# while it loads, and the first ones after it (which would find all of it in the youngest
# generation), would cost the cold start tens of milliseconds and free nothing.
gc.disable()

from aws_lambda_powertools import Logger  # noqa: E402 - imported with the collector off

from mutguard.functions.aws_lambda import RUN_ID_ATTRIBUTE  # noqa: E402
from mutguard.functions.payload import InvokePayload, PayloadError, parse_payload  # noqa: E402
from mutguard.functions.runtime import (  # noqa: E402
    Settings,
    finish_run,
    result_body,
    retry_reason,
    run_scan,
)
from mutguard.providers import PROVIDERS  # noqa: E402

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from mutguard.functions.result import ScanResult

logger = Logger(service="mutguard")

SQS_SOURCE = "aws:sqs"
SqsRecord = Mapping[str, Any]  # one record of an SQS event, as is_sqs_batch checks it
PROVIDER = "eks"  # what this function scans: the Lambda runtime holds its SDK, boto3


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> Mapping[str, Any]:
    if not is_sqs_batch(event):
        return invoke(event, context.aws_request_id)
    # Not Powertools' batch processor: it loads every event class and asyncio, some 40 ms of a
    # queued scan's cold start, for what this loop does. A batch whose every message failed is
    # answered like any other (all of them reported), not raised.
    settings = Settings.from_env()
    failed = [r["messageId"] for r in event["Records"] if not scan_record(r, settings)]
    return {"batchItemFailures": [{"itemIdentifier": message} for message in failed]}


@logger.inject_lambda_context(clear_state=True)
def direct_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return invoke(event, context.aws_request_id)


def is_sqs_batch(event: Any) -> bool:
    """An event Lambda's SQS event source mapping builds: records from aws:sqs, each with a
    messageId and a body."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(
            isinstance(r, Mapping)
            and r.get("eventSource") == SQS_SOURCE
            and isinstance(r.get("messageId"), str)
            and isinstance(r.get("body"), str)
            for r in records
        )
    )


def invoke(event: Any, request_id: str) -> dict[str, Any]:
    """A direct invoke: the report, or a 400 naming the bad field."""
    logger.set_correlation_id(request_id)
    try:
        payload = invoke_payload(event)
    except PayloadError as exc:
        logger.error("payload rejected", extra={"field": exc.field, "reason": exc.message})
        return {"statusCode": exc.status, **exc.body()}
    result = scan(payload, Settings.from_env())
    return {"statusCode": 200, "run_id": request_id, **result_body(result)}


def invoke_payload(event: Any) -> InvokePayload:
    """A direct invoke's scan payload. An event with records is some service's batch: named as
    such rather than rejected for the scan fields it lacks."""
    if isinstance(event, Mapping) and "Records" in event:
        raise PayloadError(
            "Records",
            "records are no scan payload; only `handler` takes them, as an SQS batch "
            "(eventSource aws:sqs, each with a messageId and a body)",
        )
    return only_scans(parse_payload(event))


def scan_record(record: SqsRecord, settings: Settings) -> bool:
    """Scan (and publish) one queued message, or send the digest a `finish_run` follow-up asks
    for; False when it must be delivered again (each failure is logged, with its reason)."""
    logger.set_correlation_id(run_id(record) or record["messageId"])
    logger.append_keys(message_id=record["messageId"])
    try:
        payload = parse_payload(record["body"])
        if payload.action == "finish_run":
            reason = finish_run(payload, settings)
            if reason is not None:
                logger.warning("fleet digest follow-up incomplete", extra={"reason": reason})
        else:
            reason = retry_reason(scan(only_scans(payload), settings))
    except PayloadError as exc:
        logger.error(
            "malformed scan message: left for redelivery and the dead-letter queue",
            extra={"field": exc.field, "reason": exc.message},
        )
        return False
    except Exception:  # one message's surprise must not cost the batch's other messages
        logger.exception("scan message failed")
        return False
    return reason is None


def only_scans(payload: InvokePayload) -> InvokePayload:
    if payload.action != "scan":
        raise PayloadError(
            "action", "this function only scans; invoke the dispatcher function to fan out"
        )
    return payload


def scan(payload: InvokePayload, settings: Settings) -> ScanResult:
    result = run_scan(payload, settings)
    summary = {
        "targets": [target.label for target in payload.targets],
        "clusters": len(result.report.clusters),
        "failed_targets": [target.label for target in result.failed_targets],
        "scan_errors": [f"{e.scope}: {e.message}" for e in result.report.errors],
    }
    if payload.publish:
        summary["published"] = [
            {"sink": r.sink, "ok": r.ok, "sent": r.sent, "error": r.error} for r in result.published
        ]
        summary["publish_error"] = result.publish_error
    reason = retry_reason(result)
    if reason is not None:
        logger.warning("scan incomplete", extra={**summary, "reason": reason})
    else:
        logger.info("scan finished", extra=summary)
    return result


def run_id(record: SqsRecord) -> str | None:
    attributes = record.get("messageAttributes")
    attribute = attributes.get(RUN_ID_ATTRIBUTE) if isinstance(attributes, Mapping) else None
    value = attribute.get("stringValue") if isinstance(attribute, Mapping) else None
    return value if isinstance(value, str) and value else None


# The EKS collector and boto3, which every scan needs, load in the init too.
try:
    PROVIDERS.get(PROVIDER).collector_module()
finally:
    gc.freeze()
    gc.enable()
