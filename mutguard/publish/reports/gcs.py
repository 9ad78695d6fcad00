"""The report store on Google Cloud Storage (`MUTGUARD_REPORT_STORE=gcs:BUCKET[/PREFIX]`).

Objects are uploaded with their Content-Type and no ACL: the bucket's uniform bucket-level
access and enforced public access prevention keep them private (terraform/modules/gcp). Cloud
Storage encrypts every object at rest (Google-managed keys); a bucket's default Cloud KMS key
(CMEK) applies to them too, so nothing is asked for per object.

Signed links are V4 signed URLs, valid for at most 7 days. Credentials that hold a private key
(a service account key) sign locally; the function's own credentials (the metadata server's)
cannot, so the URL is signed through the IAM Credentials API's signBlob, which needs
iam.serviceAccounts.signBlob on the function's own service account
(roles/iam.serviceAccountTokenCreator on itself). Console links open the object's page in the
Cloud console. The service account needs storage.objects.create on the bucket; a signed link
reads with its storage.objects.get.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any
from urllib.parse import quote

from mutguard.errors import InputError
from mutguard.publish.reports import ReportArchiveError
from mutguard.publish.retry import DeliveryError, RetryPolicy, call_with_retry
from mutguard.publish.stores.gcs import BUCKET_NAME, TIMEOUT_SECONDS, failure


class GcsReportArchive:
    def __init__(self, location: str, kms_key: str | None, retry: RetryPolicy | None = None):
        bucket, _, prefix = location.partition("/")
        if not BUCKET_NAME.match(bucket):
            raise InputError(
                f"gcs:BUCKET[/PREFIX] needs a Cloud Storage bucket name, not {bucket!r}"
            )
        if kms_key:
            raise InputError(
                "a KMS key is set for S3 only; on Cloud Storage set the bucket's default key"
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.name = f"gcs:{bucket}/{self.prefix}" if self.prefix else f"gcs:{bucket}"
        self._retry = retry or RetryPolicy()
        self._client: Any = None
        self._client_lock = threading.Lock()

    def put(self, key: str, data: bytes, content_type: str) -> str:
        def upload() -> None:
            self._blob(key).upload_from_string(
                data, content_type=content_type, retry=None, timeout=TIMEOUT_SECONDS
            )

        self._run(f"store the report in {self.name}", upload)
        return f"gs://{self.bucket}/{self._name(key)}"

    def signed_url(self, key: str, seconds: int) -> str:
        def sign() -> str:
            from google.auth.credentials import Signing
            from google.auth.transport.requests import Request

            credentials = self._storage()._credentials
            by_iam: dict[str, str] = {}
            if not isinstance(credentials, Signing):  # the metadata server's: sign with IAM
                credentials.refresh(Request())
                by_iam = {
                    "service_account_email": credentials.service_account_email,
                    "access_token": credentials.token,
                }
            url: str = self._blob(key).generate_signed_url(
                version="v4",
                expiration=datetime.timedelta(seconds=seconds),
                method="GET",
                **by_iam,
            )
            return url

        return self._run(f"sign a link to the report in {self.name}", sign)

    def console_url(self, key: str) -> str:
        return (
            "https://console.cloud.google.com/storage/browser/_details/"
            f"{self.bucket}/{quote(self._name(key), safe='/')}"
        )

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _blob(self, key: str) -> Any:
        return self._storage().bucket(self.bucket).blob(self._name(key))

    def _run(self, what: str, action: Any) -> Any:
        def attempt() -> Any:
            try:
                return action()
            except Exception as err:  # whatever the client raises, the error names the store
                raise failure(what, err) from None

        try:
            return call_with_retry(attempt, self._retry)
        except DeliveryError as err:
            raise ReportArchiveError(str(err)) from None

    def _storage(self) -> Any:
        with self._client_lock:
            if self._client is None:
                from google.cloud import storage

                self._client = storage.Client(project=None)
            return self._client


def open_archive(location: str, kms_key: str | None) -> GcsReportArchive:
    return GcsReportArchive(location, kms_key)
