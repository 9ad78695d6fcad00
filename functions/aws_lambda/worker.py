"""AWS Lambda `mutguard.functions.aws_lambda.worker.handler`: scan, then publish.

Two ways in:
- An SQS batch (the event source mapping of MUTGUARD_QUEUE_URL, with ReportBatchItemFailures):
  each record is one `scan` message from the dispatcher. A message whose target could not be
  scanned, whose publishing failed, or that is not a valid scan payload is returned in
  `batchItemFailures`, so SQS redelivers only that message and, after the queue's
  maxReceiveCount, moves it to the dead-letter queue; nothing is dropped unnoticed.
  Returns {"batchItemFailures": [{"itemIdentifier": messageId}, ...]}.
- A direct invoke (`aws lambda invoke --payload '{"action": "scan", "targets": [...]}'`): the
  scan runs now and the answer is {"statusCode": 200, "run_id": ..., "report": {...},
  "failed_targets": [...], "published": [...], "publish_error": ...}. A bad payload gets
  {"statusCode": 400, "error": {"status": 400, "field": ..., "message": ...}} and nothing runs.

Log lines are JSON (Powertools); a queued message logs under its `run_id` attribute (the
dispatcher's request id), so one scheduled run's lines share a correlation id, and a direct
invoke under its own request id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from mutguard.functions.aws_lambda import RUN_ID_ATTRIBUTE
from mutguard.functions.payload import InvokePayload, PayloadError, parse_payload
from mutguard.functions.runtime import (
    ScanResult,
    Settings,
    result_body,
    retry_reason,
    run_scan,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="mutguard")

SQS_SOURCE = "aws:sqs"


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if is_sqs_batch(event):
        failed = failed_messages(event["Records"], Settings.from_env())
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}
    return invoke(event, context.aws_request_id)


def is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, Mapping) else None
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == SQS_SOURCE for r in records)
    )


def invoke(event: Any, request_id: str) -> dict[str, Any]:
    """A direct invoke: the report, or a 400 naming the bad field."""
    logger.set_correlation_id(request_id)
    try:
        payload = scan_payload(event)
    except PayloadError as exc:
        logger.error("payload rejected", extra={"field": exc.field, "reason": exc.message})
        return {"statusCode": exc.status, **exc.body()}
    result = scan(payload, Settings.from_env())
    return {"statusCode": 200, "run_id": request_id, **result_body(result)}


def failed_messages(records: list[Mapping[str, Any]], settings: Settings) -> list[str]:
    """The messageIds of the records that must be delivered again."""
    failed = []
    for record in records:
        message_id = str(record.get("messageId"))
        logger.set_correlation_id(run_id(record) or message_id)
        logger.append_keys(message_id=message_id)
        try:
            done = scan_message(record, settings)
        except Exception:  # one message's surprise must not fail the batch's other messages
            logger.exception("scan message failed")
            done = False
        if not done:
            failed.append(message_id)
    logger.remove_keys(["message_id"])
    return failed


def scan_message(record: Mapping[str, Any], settings: Settings) -> bool:
    """Scan (and publish) one queued message; True when it needs no redelivery."""
    try:
        payload = scan_payload(record.get("body"))
    except PayloadError as exc:
        logger.error(
            "malformed scan message: left for redelivery and the dead-letter queue",
            extra={"field": exc.field, "reason": exc.message},
        )
        return False
    return retry_reason(scan(payload, settings)) is None


def scan_payload(raw: Any) -> InvokePayload:
    payload = parse_payload(raw)
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


def run_id(record: Mapping[str, Any]) -> str | None:
    attributes = record.get("messageAttributes")
    attribute = attributes.get(RUN_ID_ATTRIBUTE) if isinstance(attributes, Mapping) else None
    value = attribute.get("stringValue") if isinstance(attribute, Mapping) else None
    return value if isinstance(value, str) and value else None
