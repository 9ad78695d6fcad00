"""What the AWS sinks, the DynamoDB store and the Secrets Manager source share: one way to make
a boto3 client, and one way to sort its failures into retryable or not.

boto3 is imported only here, inside functions, so nothing AWS loads until an AWS sink delivers.
botocore's own retries are off (one attempt per call): retrying is the dispatcher's, with the
run's RetryPolicy, so every wait is bounded, jittered and visible to tests. Credentials and the
region come from boto3's usual chain (environment, profile, the function's role); the endpoint
can be moved with AWS_ENDPOINT_URL or AWS_ENDPOINT_URL_<SERVICE> (botocore >= 1.31).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from mutguard import __version__
from mutguard.publish.retry import DeliveryError, RetryableError
from mutguard.publish.secrets import Redactor

T = TypeVar("T")

CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 30

# Worth another try, as botocore's standard retry mode judges it (retries/standard.py): its
# throttling and transient error codes, its transient HTTP statuses and connection failures;
# plus KMSThrottlingException, which SQS and SNS return when their KMS key is throttled.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "KMSThrottlingException",
    }
)
RETRYABLE_STATUS = frozenset({500, 502, 503, 504})

# `arn:PARTITION:SERVICE:REGION:ACCOUNT:...`, and SQS queue URLs such as
# https://sqs.eu-west-1.amazonaws.com/123456789012/name (or .amazonaws.com.cn).
_ARN_REGION = re.compile(r"^arn:[^:]+:[^:]+:([a-z0-9-]+):")
_QUEUE_URL_REGION = re.compile(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com")


_session_lock = threading.Lock()


@cache
def _session() -> Any:
    """One boto3 session per process: each new one would parse botocore's endpoint and service
    data again (about 0.1 s a client)."""
    import boto3

    return boto3.session.Session()


def client(service: str, region: str | None) -> Any:
    """A boto3 client that makes one attempt per call; `region` None uses boto3's default."""
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        user_agent_extra=f"mutguard/{__version__}",
    )
    with _session_lock:  # clients are thread-safe, a session creating them is not
        return _session().client(service, region_name=region, config=config)


def region_of_arn(arn: str) -> str | None:
    match = _ARN_REGION.match(arn)
    return match.group(1) if match and match.group(1) else None


def region_of_queue(queue_url: str) -> str | None:
    match = _QUEUE_URL_REGION.match(queue_url)
    return match.group(1) if match else None


class AwsError(DeliveryError):
    """An AWS call that failed for good; `code` is the service's error code ("" if none)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class RetryableAwsError(RetryableError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def error_code(err: Exception) -> str:
    response = getattr(err, "response", None) or {}
    code: str = response.get("Error", {}).get("Code", "")
    return code


def call(what: str, action: Callable[[], T], redactor: Redactor) -> T:
    """Run one AWS call; its failure becomes RetryableAwsError or AwsError, whose message names
    `what` and the service's error code and passes through `redactor`."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

    try:
        return action()
    except ClientError as err:
        code = error_code(err)
        detail = err.response.get("Error", {}).get("Message") or str(err)
        message = redactor.redact(f"{what}: {code or 'error'}: {detail}")
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in RETRYABLE_CODES or status in RETRYABLE_STATUS:
            raise RetryableAwsError(message, code) from None
        raise AwsError(message, code) from None
    except (ConnectionError, HTTPClientError) as err:  # refused, reset, timed out
        raise RetryableAwsError(redactor.redact(f"{what}: unreachable: {err}"), "") from None
    except BotoCoreError as err:  # no credentials, no region, a parameter AWS would refuse
        raise AwsError(redactor.redact(f"{what}: {err}"), "") from None
