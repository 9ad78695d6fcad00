"""A proxy in front of moto_server that records every AWS call and fills the gaps Terraform's
AWS provider and mutguard's EKS reads hit in moto.

Every request is forwarded to moto unchanged, except:
- EKS access entries (create, describe, list, delete, tags), their associated access policies
  and OIDC identity provider configs, which moto lacks: answered from an in-memory registry
  keyed by account, region and cluster, in EKS's rest-json wire format.
- SQS `RedriveAllowPolicy`, which moto stores but refuses to return (GetQueueAttributes answers
  InvalidAttributeName, so the provider's aws_sqs_queue_redrive_allow_policy never converges):
  kept here per queue and merged into the answer. moto's RedrivePolicy is re-sent compact, as
  SQS writes it, so the provider sees no whitespace drift.
- S3 bucket policies: moto cannot tell TLS from plain HTTP, and evaluates a statement
  conditioned on aws:SecureTransport as if it matched, so a TLS-only Deny would refuse every
  request. The policy is kept here as written (and answered to GetBucketPolicy) while moto gets
  it without those statements.

Each call is recorded as who (the SigV4 access key, and the role it belongs to when an
AssumeRole through this proxy issued it), the signing service, the operation and its
parameters. Clients reach it through AWS_ENDPOINT_URL or the provider's `endpoints {}`.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import re
import threading
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from .aws import DEFAULT_ACCOUNT
from .http import LocalHTTPServer, Serving
from .relay import Upstream, send_answer

Json = dict[str, Any]

# "Credential=AKID/20240101/us-east-1/eks/aws4_request"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([^/,\s]+)/([^/,\s]+)/")
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


@dataclass(frozen=True)
class Call:
    access_key: str
    role_arn: str | None  # the assumed role behind access_key, when known
    region: str
    service: str  # the SigV4 signing name: sqs, sts, eks, dynamodb, ses, ...
    operation: str  # the API operation, e.g. SendMessageBatch
    params: Json  # JSON body, query form, or rest-json path parameters
    status: int


class _ApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


@dataclass
class _Eks:
    """Access entries and OIDC configs per (account, region, cluster)."""

    entries: dict[tuple[str, str, str], dict[str, Json]] = field(default_factory=dict)
    # The clientRequestToken each access entry was created with, by (account, region,
    # cluster, principal ARN).
    create_tokens: dict[tuple[str, str, str, str], str | None] = field(default_factory=dict)
    oidc: dict[tuple[str, str, str], dict[str, Json]] = field(default_factory=dict)


@cache
def _rest_routes(service: str) -> list[tuple[str, re.Pattern[str], str, list[str]]]:
    """(method, path regex, operation, path parameter names) from botocore's model."""
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # not a service botocore knows by its signing name
        return []
    routes = []
    for name in model.operation_names:
        http_ = model.operation_model(name).http
        uri = http_["requestUri"].split("?")[0]
        names = re.findall(r"\{([^}+]+)\+?\}", uri)
        pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(uri))
        routes.append((http_["method"], re.compile(pattern + "/?"), name, names))
    # Literal paths before templated ones: /clusters/x/access-entries is no DescribeCluster.
    routes.sort(key=lambda r: r[1].pattern.count("([^/]+)"))
    return routes


def _s3_operation(method: str, path: str, query: str) -> tuple[str, Json]:
    """The object calls the functions make, told apart by method (S3's model gives PutObject,
    CopyObject and the object sub-resources one path); anything else by method and path."""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    plain = all(name == "x-id" for name in parse_qs(query, keep_blank_values=True))
    operation = {"PUT": "PutObject", "GET": "GetObject"}.get(method)
    if key and plain and operation:
        return operation, {"Bucket": bucket, "Key": key}
    return f"{method} {path}", {}


def _without_transport_conditions(policy: bytes) -> bytes:
    document = json.loads(policy)
    document["Statement"] = [
        statement
        for statement in document["Statement"]
        if "aws:SecureTransport" not in json.dumps(statement.get("Condition", {}))
    ]
    return json.dumps(document).encode()


class AwsRecorder(Serving):
    def __init__(self, upstream_url: str) -> None:
        self._upstream = Upstream(upstream_url)
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._roles: dict[str, str] = {}  # access key -> assumed role ARN
        self._redrive_allow: dict[str, str] = {}  # queue name -> RedriveAllowPolicy
        self._bucket_policies: dict[str, bytes] = {}  # bucket -> its policy as written
        self._eks = _Eks()

    def start(self) -> Self:
        httpd = LocalHTTPServer(_Handler)
        httpd.recorder = self  # type: ignore[attr-defined]
        self._serve(httpd, "aws-recorder")
        return self

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def role_of(self, access_key: str) -> str | None:
        with self._lock:
            return self._roles.get(access_key)

    def account_of(self, access_key: str) -> str:
        role = self.role_of(access_key)
        return role.split(":")[4] if role else DEFAULT_ACCOUNT

    def access_entries(self) -> dict[tuple[str, str, str], list[str]]:
        """Principal ARNs of every access entry, by (account, region, cluster)."""
        with self._lock:
            return {key: sorted(entries) for key, entries in self._eks.entries.items() if entries}

    def add_oidc_config(self, account: str, region: str, cluster: str, name: str) -> None:
        oidc = {
            "identityProviderConfigName": name,
            "identityProviderConfigArn": (
                f"arn:aws:eks:{region}:{account}:identityproviderconfig/{cluster}/oidc/{name}/"
                + str(uuid.uuid4())
            ),
            "clusterName": cluster,
            "issuerUrl": "https://idp.example.com",
            "clientId": "kubernetes",
            "usernameClaim": "email",
            "groupsClaim": "groups",
            "requiredClaims": {},
            "tags": {},
            "status": "ACTIVE",
        }
        with self._lock:
            self._eks.oidc.setdefault((account, region, cluster), {})[name] = oidc

    # -- request handling (called from the handler threads) -----------------------------------

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def _note_assumed(self, role_arn: str, response: bytes) -> None:
        key = ET.fromstring(response).find(  # noqa: S314 - moto's answer on 127.0.0.1
            f".//{_STS_NS}AccessKeyId"
        )
        if key is not None and key.text:
            with self._lock:
                self._roles[key.text] = role_arn

    # SQS (AWS JSON 1.0): the RedriveAllowPolicy moto does not return.
    def _sqs_request(self, operation: str, params: Json) -> Json | None:
        """Strips RedriveAllowPolicy from a request (remembering what was set); returns the
        attributes to merge into the answer, or None."""
        queue = str(params.get("QueueUrl") or params.get("QueueName") or "").rsplit("/", 1)[-1]
        attributes = params.get("Attributes") or {}
        if (
            operation in ("CreateQueue", "SetQueueAttributes")
            and "RedriveAllowPolicy" in attributes
        ):
            with self._lock:
                self._redrive_allow[queue] = attributes.pop("RedriveAllowPolicy")
        if operation == "DeleteQueue":
            with self._lock:
                self._redrive_allow.pop(queue, None)
        if operation != "GetQueueAttributes":
            return None
        names = params.get("AttributeNames") or []
        wanted = "All" in names or "RedriveAllowPolicy" in names
        params["AttributeNames"] = [n for n in names if n != "RedriveAllowPolicy"] or ["QueueArn"]
        with self._lock:
            stored = self._redrive_allow.get(queue)
        return {"RedriveAllowPolicy": stored} if wanted and stored else {}

    # EKS (rest-json): access entries and identity provider configs.
    def _eks_answer(
        self, method: str, path: str, account: str, region: str, body: bytes
    ) -> Json | None:
        segments = [unquote(s) for s in path.strip("/").split("/")]
        tag_arn = unquote(path[len("/tags/") :]) if path.startswith("/tags/") else ""
        if ":access-entry/" in tag_arn:
            return self._access_entry_tags(method, tag_arn, body)
        if len(segments) < 3 or segments[0] != "clusters":
            return None
        cluster, kind, rest = segments[1], segments[2], segments[3:]
        key = (account, region, cluster)
        with self._lock:
            entries = self._eks.entries.setdefault(key, {})
            oidc = self._eks.oidc.get(key, {})
            if kind == "access-entries":
                return self._access_entry_call(method, key, entries, rest, body)
            if kind == "identity-provider-configs" and method == "GET" and not rest:
                configs = [{"type": "oidc", "name": name} for name in sorted(oidc)]
                return {"identityProviderConfigs": configs}
            if kind == "identity-provider-configs" and rest == ["describe"]:
                name = json.loads(body or b"{}").get("identityProviderConfig", {}).get("name")
                if name not in oidc:
                    raise _ApiError(404, "ResourceNotFoundException", f"No config {name}.")
                return {"identityProviderConfig": {"oidc": oidc[name]}}
        return None

    def _access_entry_call(
        self,
        method: str,
        key: tuple[str, str, str],
        entries: dict[str, Json],
        rest: list[str],
        body: bytes,
    ) -> Json:
        account, region, cluster = key
        if not rest and method == "GET":
            return {"accessEntries": sorted(entries)}
        if not rest and method == "POST":
            request = json.loads(body or b"{}")
            principal = request["principalArn"]
            token = request.get("clientRequestToken")
            # The SDKs fill clientRequestToken (an idempotency token) and keep it when they
            # retry, so a create whose answer was lost in transit gets the entry, not a 409.
            if (
                principal in entries
                and token
                and self._eks.create_tokens.get((*key, principal)) == token
            ):
                return {"accessEntry": entries[principal]}
            if principal in entries:
                raise _ApiError(409, "ResourceInUseException", "The access entry exists.")
            self._eks.create_tokens[(*key, principal)] = token
            now = datetime.datetime.now(datetime.UTC).timestamp()
            role_account, role_name = principal.split(":")[4], principal.rsplit("/", 1)[-1]
            entries[principal] = {
                "clusterName": cluster,
                "principalArn": principal,
                "kubernetesGroups": request.get("kubernetesGroups", []),
                "accessEntryArn": (
                    f"arn:aws:eks:{region}:{account}:access-entry/{cluster}/role/"
                    f"{role_account}/{role_name}/{uuid.uuid4()}"
                ),
                "createdAt": now,
                "modifiedAt": now,
                "tags": request.get("tags") or {},
                "username": f"arn:aws:sts::{role_account}:assumed-role/{role_name}/"
                "{{SessionName}}",
                "type": request.get("type", "STANDARD"),
            }
            return {"accessEntry": entries[principal]}
        principal = rest[0]
        if principal not in entries:
            raise _ApiError(404, "ResourceNotFoundException", f"No access entry {principal}.")
        if rest[1:] == ["access-policies"]:
            return {
                "clusterName": cluster,
                "principalArn": principal,
                "associatedAccessPolicies": [],
            }
        if method == "DELETE":
            del entries[principal]
            self._eks.create_tokens.pop((*key, principal), None)
            return {}
        return {"accessEntry": entries[principal]}

    def _access_entry_tags(self, method: str, arn: str, body: bytes) -> Json:
        with self._lock:
            for entries in self._eks.entries.values():
                for entry in entries.values():
                    if entry["accessEntryArn"] == arn:
                        if method == "POST":
                            entry["tags"].update(json.loads(body or b"{}").get("tags", {}))
                        return {"tags": entry["tags"]} if method == "GET" else {}
        raise _ApiError(404, "ResourceNotFoundException", f"No resource {arn}.")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _handle(self) -> None:
        recorder: AwsRecorder = self.server.recorder  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = urlsplit(self.path)
        credential = _CREDENTIAL.search(self.headers.get("Authorization", ""))
        access_key, region, service = credential.groups() if credential else ("", "", "")
        operation, params = self._operation(service, target.path, target.query, body)
        merge: Json | None = None
        # Checksums of a body rewritten here would no longer match it.
        dropped: set[str] = set()
        if service == "s3" and "policy" in parse_qs(target.query, keep_blank_values=True):
            bucket = unquote(target.path).strip("/")
            if self.command == "GET" and bucket in recorder._bucket_policies:
                self._record(recorder, access_key, region, service, "GetBucketPolicy", {}, 200)
                self._send(200, recorder._bucket_policies[bucket])
                return
            if self.command == "PUT":
                recorder._bucket_policies[bucket] = body
                body = _without_transport_conditions(body)
                dropped |= {"content-md5", *(k.lower() for k in self.headers if "checksum" in k)}
            if self.command == "DELETE":
                recorder._bucket_policies.pop(bucket, None)
        try:
            if service == "sqs" and self.headers.get("X-Amz-Target"):
                merge = recorder._sqs_request(operation, params)
                body = json.dumps(params).encode()
            answer = (
                recorder._eks_answer(
                    self.command, target.path, recorder.account_of(access_key), region, body
                )
                if service == "eks"
                else None
            )
        except _ApiError as err:
            self._record(recorder, access_key, region, service, operation, params, err.status)
            self._send(err.status, json.dumps({"message": err.message}).encode(), err.error_type)
            return
        if answer is not None:
            self._record(recorder, access_key, region, service, operation, params, 200)
            self._send(200, json.dumps(answer).encode())
            return
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in dropped]
        answer = recorder._upstream.exchange(self.command, self.path, headers, body)
        status = answer.status
        if merge is not None and status == 200:
            document = json.loads(answer.body)
            attributes = {**document.get("Attributes", {}), **merge}
            if "RedrivePolicy" in attributes:
                attributes["RedrivePolicy"] = json.dumps(
                    json.loads(attributes["RedrivePolicy"]), separators=(",", ":")
                )
            answer.body = json.dumps({**document, "Attributes": attributes}).encode()
        if (service, operation, status) == ("sts", "AssumeRole", 200):
            recorder._note_assumed(str(params.get("RoleArn")), answer.body)
        self._record(recorder, access_key, region, service, operation, params, status)
        send_answer(self, answer)

    def _operation(self, service: str, path: str, query: str, body: bytes) -> tuple[str, Json]:
        amz_target = self.headers.get("X-Amz-Target")
        if amz_target:  # AWS JSON protocols: SQS, DynamoDB, Secrets Manager, Logs, ...
            return amz_target.rsplit(".", 1)[-1], json.loads(body or b"{}")
        if service == "s3":
            return _s3_operation(self.command, path, query)
        form = parse_qs(body.decode(errors="replace")) if body else {}
        form |= parse_qs(query)
        if "Action" in form:  # the query protocol: STS, SNS, SES, EC2, IAM
            return form["Action"][0], {k: v[0] for k, v in form.items()}
        for method, pattern, name, names in _rest_routes(service):
            match = pattern.fullmatch(path)
            if method == self.command and match:
                params = dict(zip(names, (unquote(g) for g in match.groups()), strict=True))
                with contextlib.suppress(ValueError):
                    params |= json.loads(body) if body else {}
                return name, params
        return f"{self.command} {path}", {}

    def _record(
        self,
        recorder: AwsRecorder,
        access_key: str,
        region: str,
        service: str,
        operation: str,
        params: Json,
        status: int,
    ) -> None:
        role = recorder.role_of(access_key)
        recorder._record(Call(access_key, role, region, service, operation, params, status))

    def _send(self, status: int, data: bytes, error_type: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
