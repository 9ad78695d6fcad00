"""The report store on Azure Blob Storage
(`MUTGUARD_REPORT_STORE=azure-blob:ACCOUNT_URL/CONTAINER[/PREFIX]`, ACCOUNT_URL
`https://ACCOUNT.blob.core.windows.net`; an emulator on 127.0.0.1 or localhost is addressed
path-style, `http://127.0.0.1:PORT/ACCOUNT/CONTAINER`).

Blobs are uploaded as block blobs with their Content-Type, never overwriting one that exists,
into a private container (terraform/modules/azure: no anonymous access). Azure Storage
encrypts every blob at rest (Storage Service Encryption, Microsoft-managed keys unless the
account has customer-managed ones); it cannot be turned off, so nothing is asked for per blob.

Credentials: the account key from the connection string in
$MUTGUARD_AZURE_STORAGE_CONNECTION_STRING when it is set (then a signed link is a service SAS
signed with that key), else DefaultAzureCredential (the function app's managed identity, which
needs Storage Blob Data Contributor on the container, and "Storage Blob Delegator" on the
account, or a role with
Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action, to sign: a
signed link is then a user delegation SAS). Either SAS grants read on that one blob, over HTTPS
only (HTTP too for an emulator on loopback), for at most 7 days. Console links are the blob's
URL without a SAS: it opens for someone who signs in with read access (Storage Explorer, `az
storage blob download --auth-mode login`), not anonymously.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from mutguard import clock
from mutguard.errors import InputError
from mutguard.publish import azure_storage
from mutguard.publish.reports import ReportArchiveError
from mutguard.publish.retry import DeliveryError, RetryPolicy, call_with_retry
from mutguard.publish.secrets import EnvSecrets, MissingSecret, Redactor, SecretSource

LOOPBACK = ("127.0.0.1", "localhost")
# A SAS starts a little before now: the service's clock may be behind this one.
CLOCK_SKEW = datetime.timedelta(minutes=5)


class AzureBlobReportArchive:
    def __init__(
        self,
        location: str,
        kms_key: str | None,
        secrets: SecretSource | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if kms_key:
            raise InputError(
                "a KMS key is set for S3 only; on Azure the storage account's encryption applies"
            )
        self.account_url, self.container, self.prefix = split_location(location)
        self.name = f"azure-blob:{self.account_url}/{self.container}" + (
            f"/{self.prefix}" if self.prefix else ""
        )
        self._secrets = secrets or EnvSecrets()
        self._redactor = Redactor()
        self._retry = retry or RetryPolicy()
        self._client: Any = None
        self._account_key: str | None = None

    def put(self, key: str, data: bytes, content_type: str) -> str:
        from azure.storage.blob import ContentSettings

        def upload() -> None:
            self._blob(key).upload_blob(
                data,
                blob_type="BlockBlob",
                overwrite=False,
                content_settings=ContentSettings(content_type=content_type),
            )

        self._run(f"store the report in {self.name}", upload)
        return self._url(key)

    def signed_url(self, key: str, seconds: int) -> str:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        def sign() -> str:
            start = clock.now() - CLOCK_SKEW
            expiry = clock.now() + datetime.timedelta(seconds=seconds)
            service = self._service()
            signing: dict[str, Any] = (
                {"account_key": self._account_key}
                if self._account_key
                else {"user_delegation_key": service.get_user_delegation_key(start, expiry)}
            )
            token = generate_blob_sas(
                account_name=service.account_name,
                container_name=self.container,
                blob_name=self._name(key),
                permission=BlobSasPermissions(read=True),
                start=start,
                expiry=expiry,
                protocol="https" if urlsplit(self.account_url).scheme == "https" else "https,http",
                **signing,
            )
            return f"{self._url(key)}?{token}"

        return str(self._run(f"sign a link to the report in {self.name}", sign))

    def console_url(self, key: str) -> str:
        return self._url(key)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _url(self, key: str) -> str:
        return f"{self.account_url}/{self.container}/{quote(self._name(key))}"

    def _blob(self, key: str) -> Any:
        return self._service().get_blob_client(self.container, self._name(key))

    def _run(self, what: str, action: Any) -> Any:
        try:
            return call_with_retry(
                lambda: azure_storage.call(what, action, self._redactor), self._retry
            )
        except DeliveryError as err:
            raise ReportArchiveError(str(err)) from None

    def _service(self) -> Any:
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            credential: Any
            try:
                connection = azure_storage.connection_string(
                    self._secrets, azure_storage.CONNECTION_STRING_ENV, self._redactor
                )
            except MissingSecret:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
            else:
                settings = dict(part.split("=", 1) for part in connection.split(";") if "=" in part)
                self._account_key = settings.get("AccountKey")
                credential = {
                    "account_name": settings.get("AccountName"),
                    "account_key": self._account_key,
                }
            self._client = BlobServiceClient(self.account_url, credential=credential, retry_total=0)
        return self._client


def split_location(location: str) -> tuple[str, str, str]:
    """(account URL, container, prefix) of `ACCOUNT_URL/CONTAINER[/PREFIX]`."""
    parts = urlsplit(location)
    path = [p for p in parts.path.split("/") if p]
    loopback = parts.hostname in LOOPBACK
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise InputError(
            "azure-blob:ACCOUNT_URL/CONTAINER[/PREFIX] needs an https:// account URL "
            "(https://ACCOUNT.blob.core.windows.net)"
        )
    account = path.pop(0) if loopback and path else None  # an emulator's path-style account
    if not path or parts.query:
        raise InputError(
            "azure-blob:ACCOUNT_URL/CONTAINER[/PREFIX] names no container (and takes no SAS)"
        )
    base = f"{parts.scheme}://{parts.netloc}" + (f"/{account}" if account else "")
    return base, path[0], "/".join(path[1:])


def open_archive(location: str, kms_key: str | None) -> AzureBlobReportArchive:
    return AzureBlobReportArchive(location, kms_key)
