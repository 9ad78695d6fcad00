"""AWS Lambda `mutguard.functions.aws_lambda.dispatcher.handler`: a scheduled run's fan-out.

EventBridge Scheduler invokes it (asynchronously) with the schedule's Input as the event, e.g.
{"action": "dispatch", "publish": true}; the action may be left out. The targets are the
payload's, else MUTGUARD_TARGETS, else, with MUTGUARD_AWS_ORGANIZATIONS=true, every active
account of the organization in each of MUTGUARD_REGIONS (none: every enabled region). Each
provider, account and region becomes one `scan` message on MUTGUARD_QUEUE_URL, where the
worker picks it up, so one slow or broken account holds up nothing else.

Every message carries this invocation's request id as its `run_id` attribute: the worker logs
under it, so one run's lines share a correlation id. With MUTGUARD_STATE_STORE, a publishing
dispatch first records the run (how many scans it queues) in the store, and each scan carries
its part of the run in its payload (`run`), so the worker finishing the last part sends the one
fleet digest (mutguard/publish/fleet.py); an asynchronous retry keeps the request id, so it is
the same run. Entries SQS refuses are retried with
backoff; if some are still refused, or the configuration is wrong, the invocation fails, so
the schedule's retry policy and dead-letter queue take over and nothing is dropped unnoticed.
A retried dispatch queues its messages again (at least once: the worker's state store keeps a
duplicate scan from alerting twice). A malformed payload is answered with a 400 body naming
the field, and nothing is queued.

Returns {"statusCode": 200, "run_id": ..., "dispatched": n}: n messages queued, the scans and,
when the run before this one never got its fleet digest, one `finish_run` follow-up for it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from mutguard import __version__
from mutguard.errors import ConfigurationError
from mutguard.functions.aws_lambda import RUN_ID_ATTRIBUTE, organizations
from mutguard.functions.payload import InvokePayload, PayloadError, parse_payload
from mutguard.functions.runtime import DispatchError, Settings, fan_out
from mutguard.publish.retry import RetryPolicy

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="mutguard")

QUEUE_URL_ENV = "MUTGUARD_QUEUE_URL"
SQS_BATCH_LIMIT = 10  # entries per SendMessageBatch call
SEND_RETRY = RetryPolicy(attempts=4, base_delay=0.2, max_delay=5.0)
LOGGED_TARGETS = 100  # a whole organization's would not fit CloudWatch's 256 KB per line


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    run_id = context.aws_request_id
    logger.set_correlation_id(run_id)
    try:
        payload = dispatch_payload(event)
    except PayloadError as exc:
        logger.error("payload rejected", extra={"field": exc.field, "reason": exc.message})
        return {"statusCode": exc.status, **exc.body()}
    queue_url = os.environ.get(QUEUE_URL_ENV, "").strip()
    if not queue_url:
        raise ConfigurationError(f"{QUEUE_URL_ENV} is not set: the queue the worker reads")
    settings = Settings.from_env()
    if not payload.targets and not settings.targets and organizations.enabled(os.environ):
        targets = organizations.organization_targets(settings.regions)
        payload = replace(payload, targets=targets)
    messages = fan_out(payload, settings, run_id)
    send_messages(_sqs(queue_url), queue_url, [m.to_message() for m in messages], run_id)
    logger.info(
        "scan messages queued",
        extra={
            "dispatched": len(messages),
            "targets": [_label(m) for m in messages[:LOGGED_TARGETS]],
        },
    )
    return {"statusCode": 200, "run_id": run_id, "dispatched": len(messages)}


def dispatch_payload(event: Any) -> InvokePayload:
    """The payload of a dispatch; the action defaults to `dispatch` here, and a `scan` belongs
    to the worker."""
    if isinstance(event, Mapping) and "action" not in event:
        event = {"action": "dispatch", **event}
    payload = parse_payload(event)
    if payload.action != "dispatch":
        raise PayloadError(
            "action",
            "this function only dispatches; invoke the worker function to scan now",
        )
    return payload


def send_messages(
    sqs: Any,
    queue_url: str,
    bodies: Sequence[str],
    run_id: str,
    retry: RetryPolicy = SEND_RETRY,
) -> None:
    """Queue every body, SQS_BATCH_LIMIT to a call; DispatchError names what was refused."""
    refused: list[str] = []
    for start in range(0, len(bodies), SQS_BATCH_LIMIT):
        batch = {str(i): bodies[i] for i in range(start, min(start + SQS_BATCH_LIMIT, len(bodies)))}
        refused += _send_batch(sqs, queue_url, batch, run_id, retry)
    if refused:
        raise DispatchError(
            f"SQS refused {len(refused)} of {len(bodies)} scan messages: "
            + "; ".join(sorted(set(refused)))
        )


def _send_batch(
    sqs: Any, queue_url: str, batch: dict[str, str], run_id: str, retry: RetryPolicy
) -> list[str]:
    """Send one batch; entries that fail on SQS's side are sent again after a backoff, those
    SQS calls the sender's fault are not. Returns why each undelivered entry failed."""
    pending = dict(batch)
    refused: list[str] = []
    attempt = 1
    while True:
        entries = [
            {
                "Id": entry_id,
                "MessageBody": body,
                "MessageAttributes": {
                    RUN_ID_ATTRIBUTE: {"DataType": "String", "StringValue": run_id}
                },
            }
            for entry_id, body in pending.items()
        ]
        failed = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries).get("Failed", [])
        refused += [_reason(f) for f in failed if f.get("SenderFault")]
        retryable = [f for f in failed if not f.get("SenderFault")]
        if not retryable:
            return refused
        if attempt == retry.attempts:
            return refused + [f"{_reason(f)} (after {attempt} attempts)" for f in retryable]
        logger.warning("SQS refused entries, retrying", extra={"entries": len(retryable)})
        pending = {f["Id"]: pending[f["Id"]] for f in retryable}
        retry.sleep(retry.delay(attempt, None))
        attempt += 1


def _reason(failure: Mapping[str, Any]) -> str:
    return f"{failure.get('Code', 'error')}: {failure.get('Message', '')}".rstrip(": ")


def _label(payload: InvokePayload) -> str:
    return ",".join(target.label for target in payload.targets)


def _sqs(queue_url: str) -> Any:
    import boto3
    from botocore.config import Config

    from mutguard.publish.aws import region_of_queue

    config = Config(retries={"mode": "standard"}, user_agent_extra=f"mutguard/{__version__}")
    return boto3.client("sqs", region_name=region_of_queue(queue_url), config=config)
