"""The report store on Amazon S3 (`MUTGUARD_REPORT_STORE=s3:BUCKET[/PREFIX]`).

Each object is written with PutObject, its Content-Type set and server-side encryption asked
for explicitly: SSE-KMS with the configured key (MUTGUARD_REPORT_KMS_KEY, a key id, ARN or
alias) or else SSE-S3 (AES256), so a bucket whose default encryption was changed still gets
encrypted reports. No ACL is sent: the bucket's owner-enforced ownership and Block Public
Access keep the objects private (terraform/modules/aws).

Signed links are SigV4 presigned GetObject URLs, valid for at most 7 days; one signed with
temporary credentials (a Lambda function's role) stops working when those credentials expire,
whichever comes first. Console links open the object in the S3 console. The role needs
s3:PutObject on PREFIX/* (and kms:GenerateDataKey on the key with SSE-KMS); whoever opens a
signed link reads with the role's s3:GetObject (and kms:Decrypt).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from mutguard import __version__
from mutguard.errors import InputError
from mutguard.publish import aws
from mutguard.publish.reports import ReportArchiveError
from mutguard.publish.retry import DeliveryError, RetryPolicy, call_with_retry
from mutguard.publish.secrets import Redactor

# General purpose bucket names: 3-63 lowercase letters, digits, dots and hyphens.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3ReportArchive:
    def __init__(self, location: str, kms_key: str | None, retry: RetryPolicy | None = None):
        bucket, _, prefix = location.partition("/")
        if not BUCKET_NAME.match(bucket):
            raise InputError(f"s3:BUCKET[/PREFIX] needs an S3 bucket name, not {bucket!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.name = f"s3:{bucket}/{self.prefix}" if self.prefix else f"s3:{bucket}"
        self._kms_key = kms_key
        self._retry = retry or RetryPolicy()
        self._client: Any = None

    def put(self, key: str, data: bytes, content_type: str) -> str:
        name = self._name(key)
        encryption: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key}
            if self._kms_key
            else {"ServerSideEncryption": "AES256"}
        )
        self._call(
            f"store the report in {self.name}",
            lambda: self._s3().put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type, **encryption
            ),
        )
        return f"s3://{self.bucket}/{name}"

    def signed_url(self, key: str, seconds: int) -> str:
        url: str = self._call(
            f"sign a link to the report in {self.name}",
            lambda: self._s3().generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self._name(key)},
                ExpiresIn=seconds,
            ),
        )
        return url

    def console_url(self, key: str) -> str:
        region = self._s3().meta.region_name
        return (
            f"https://console.aws.amazon.com/s3/object/{self.bucket}"
            f"?region={region}&prefix={quote(self._name(key), safe='')}"
        )

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, action: Any) -> Any:
        try:
            # A fresh Redactor: nothing secret is known before the link exists, and the link
            # is made last, by a call whose failure quotes no URL.
            return call_with_retry(lambda: aws.call(what, action, Redactor()), self._retry)
        except DeliveryError as err:
            raise ReportArchiveError(str(err)) from None

    def _s3(self) -> Any:
        if self._client is None:
            self._client = presigning_client()
        return self._client


def presigning_client() -> Any:
    """An S3 client with aws.client's settings that also signs presigned URLs with SigV4
    (botocore presigns S3 URLs with the legacy signature unless told), one attempt per call."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=aws.CONNECT_TIMEOUT_SECONDS,
        read_timeout=aws.READ_TIMEOUT_SECONDS,
        user_agent_extra=f"mutguard/{__version__}",
        signature_version="s3v4",
    )
    return boto3.session.Session().client("s3", config=config)


def open_archive(location: str, kms_key: str | None) -> S3ReportArchive:
    return S3ReportArchive(location, kms_key)
