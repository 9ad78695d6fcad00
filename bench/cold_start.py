"""Benchmark: what a cold start of each cloud's scan function costs, and the Lambda package's size.

- Time to the first cloud API call. For each cloud a fresh interpreter loads what the platform
  loads (its host library), imports the scan handler and calls it with a real scan event, as the
  platform would: the AWS worker with an SQS batch of one dispatcher message, the Cloud Function
  `on_message` with a Pub/Sub CloudEvent, the Azure `scan_target` with a queue message. The SDK
  is pointed at a local server on 127.0.0.1 (fake credentials), which notes the monotonic time
  at which the first cloud API request arrives:
    aws    sts:AssumeRole of MUTGUARD_ROLE_ARN (the keys come from the environment, as on Lambda)
    gcp    container clusters.list over REST, after the credentials requests to the metadata
           server (on Cloud Functions, the function's service account)
    azure  ARM managedClusters list over HTTPS, after the token request to the managed identity
           endpoint (IDENTITY_ENDPOINT, as on App Service)
  The credentials requests come first on both sides and are answered, not counted. Against it,
  the floor: a minimal function doing the same first call the same way (same client and
  options, same endpoint, same credential resolution) under the same host library. Each run
  ends at that request; the bench checks both sides made the same call. Target <= 1.15x.
  Under each cloud, the imports its handler makes before the call that the floor does not,
  heaviest first (`python -X importtime`, the first request held unanswered). A module loaded
  with importlib.import_module, as a provider's collector is, gets no line of its own there:
  its body counts in the module that loaded it (the AWS worker's holds eks_plugin's and
  eks_live's).
- dist/mutguard-aws-lambda.zip unzipped, without what the Lambda runtime ships (boto3, botocore,
  s3transfer, jmespath; the package leaves them out): target < 15 MB. Built with
  release/package.py when dist/ has none.

A round runs the handler and the floor back to back (which goes first alternates), after one
warm-up of each, with this venv's interpreter and bytecode the warm-up cached (in a directory of
the bench's own, whatever the tree's `.pyc` files or PYTHONDONTWRITEBYTECODE). The ratio is the
median of the rounds' ratios, shown with their interquartile range: the two runs of a round
share the machine's load of the moment. Wall time (spawn to arrival) is what the target is
judged on; the programs' CPU time (user and system, to the moment they are stopped) is shown as
well, being the steadier of the two on a busy machine. Lambda cannot write bytecode next to
the function's code, so a real cold start there also compiles what it imports. Targets are
reported, not enforced: the exit status is 0 unless the benchmark itself could not run.
Run with `make bench` or `.venv/bin/python bench/cold_start.py` (--help for options).
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import re
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
LAMBDA_ZIP = ROOT / "dist" / "mutguard-aws-lambda.zip"
LAMBDA_RUNTIME_SDK = ("boto3", "botocore", "s3transfer", "jmespath")

TARGET_RATIO = 1.15  # a handler may take at most this many times its floor to its first call
TARGET_LAMBDA_BYTES = 15_000_000
FIRST_CALL_TIMEOUT = 120.0  # seconds a program may take to its first call

AWS_ACCOUNT = "123456789012"
GCP_PROJECT = "shop-prod-1234"
AZURE_SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
ROLE_TEMPLATE = "arn:aws:iam::{account}:role/mutguard-reader"
IDENTITY_HEADER = "bench-identity-header"
# Settings of the machine that would send a client elsewhere than the local servers.
FOREIGN_ENV = ("AWS_", "GOOGLE_", "GCE_", "CLOUDSDK_", "AZURE_", "IDENTITY_", "MSI_", "IMDS_")
FOREIGN_ENV += ("MUTGUARD_", "POWERTOOLS_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "REQUESTS_")
FOREIGN_ENV += ("CURL_CA_BUNDLE", "SSL_CERT_")


class BenchError(Exception):
    """The benchmark could not run."""


def log(message: str = "") -> None:
    print(message, flush=True)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


# --- The local server -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes | str | dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    # The name of the cloud API call this request is, or None for a credentials request.
    call: str | None = None


class Recorder:
    """When the first cloud API call of the current run arrived, and which call it was."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._released = threading.Event()
        self.hold = False  # keep the first call unanswered until the run ends
        self.arrival: float | None = None
        self.call: str | None = None

    def reset(self, hold: bool) -> None:
        with self._lock:
            self.hold = hold
            self.arrival = self.call = None
            self._arrived.clear()
            self._released.clear()

    def arrived(self, call: str, when: float) -> bool:
        """Note a call; True for the run's first."""
        with self._lock:
            if self.arrival is not None:
                return False
            self.arrival, self.call = when, call
        self._arrived.set()
        return True

    def wait(self, timeout: float) -> bool:
        return self._arrived.wait(timeout)

    def release(self) -> None:
        self._released.set()

    def held(self) -> None:
        self._released.wait(FIRST_CALL_TIMEOUT)


Responder = Callable[[Request], Answer]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _handle(self) -> None:
        when = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = Request(
            self.command,
            url.path,
            {k: v[0] for k, v in parse_qs(url.query).items()},
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        answer = self.server.responder(request)
        recorder = self.server.recorder
        if answer.call is not None and recorder.arrived(answer.call, when) and recorder.hold:
            recorder.held()
        payload = answer.body
        kind = "application/json" if isinstance(payload, dict) else "text/plain"
        if isinstance(payload, dict):
            payload = json.dumps(payload)
        data = payload.encode() if isinstance(payload, str) else payload
        self.send_response(answer.status)
        for name, value in {"Content-Type": kind, **answer.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, responder: Responder, recorder: Recorder, tls: ssl.SSLContext | None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.responder = responder
        self.recorder = recorder
        self.scheme = "http" if tls is None else "https"
        if tls is not None:
            self.socket = tls.wrap_socket(self.socket, server_side=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # a killed program's connection drops mid-answer

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(responder: Responder, recorder: Recorder, tls: ssl.SSLContext | None = None):
    server = _Server(responder, recorder, tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        recorder.release()
        server.shutdown()
        server.server_close()


def self_signed(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 and the PEM that trusts it (its own CA, CA=True)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mutguard bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "bench-ca.pem", directory / "bench-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    key_file.unlink()
    return context, cert_file


# --- The three clouds -------------------------------------------------------------------------


def aws_answer(request: Request) -> Answer:
    """STS (query protocol), which is all a run gets to: AssumeRole answered, others refused."""
    action = parse_qs(request.body.decode()).get("Action", [None])[0]
    call = f"{request.method} sts:{action}" if action else f"{request.method} {request.path}"
    if action != "AssumeRole":
        error = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
        error += "<Message>not served by the bench</Message></Error></ErrorResponse>"
        return Answer(403, error, {"Content-Type": "text/xml"}, call)
    role = ROLE_TEMPLATE.format(account=AWS_ACCOUNT).split("/")[-1]
    body = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIABENCHBENCHBENCH0</AccessKeyId>
      <SecretAccessKey>bench-secret-access-key</SecretAccessKey>
      <SessionToken>bench-session-token</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROABENCHBENCHBENCH0:mutguard</AssumedRoleId>
      <Arn>arn:aws:sts::{AWS_ACCOUNT}:assumed-role/{role}/mutguard</Arn>
    </AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata>
</AssumeRoleResponse>"""
    return Answer(200, body, {"Content-Type": "text/xml"}, call)


METADATA = "/computeMetadata/v1/"
SERVICE_ACCOUNT = "mutguard@shop-prod-1234.iam.gserviceaccount.com"


def gcp_answer(request: Request) -> Answer:
    """The metadata server (the function's service account) and the GKE API."""
    if request.path.startswith("/v1/projects/"):
        return Answer(200, {"clusters": []}, call=f"{request.method} container clusters.list")
    flavor = {"Metadata-Flavor": "Google"}
    account = METADATA + "instance/service-accounts/default/"
    if request.path == "/":
        return Answer(200, "", flavor)
    if request.path == account:
        info = {"email": SERVICE_ACCOUNT, "aliases": ["default"], "scopes": []}
        return Answer(200, info, flavor)
    if request.path == account + "email":
        return Answer(200, SERVICE_ACCOUNT, flavor)
    if request.path == account + "token":
        token = {"access_token": "bench-token", "expires_in": 3600, "token_type": "Bearer"}
        return Answer(200, token, flavor)
    if request.path == METADATA + "universe/universe-domain":
        return Answer(200, "googleapis.com", flavor)
    if request.path == METADATA + "project/project-id":
        return Answer(200, GCP_PROJECT, flavor)
    return Answer(404, "not found", flavor)


def azure_identity_answer(request: Request) -> Answer:
    """The App Service managed identity endpoint."""
    if request.headers.get("x-identity-header") != IDENTITY_HEADER:
        return Answer(400, {"statusCode": 400, "message": "The X-IDENTITY-HEADER is invalid."})
    token = {
        "access_token": "bench-token",
        "expires_on": str(int(time.time()) + 3600),
        "resource": request.query.get("resource", ""),
        "token_type": "Bearer",
        "client_id": "0b9e7f3a-6c1d-4e2f-8a5b-9c0d1e2f3a4b",
    }
    return Answer(200, token)


def azure_arm_answer(request: Request) -> Answer:
    """ARM: no cluster in the subscription."""
    kind = request.path.rsplit("/", 1)[-1]
    return Answer(200, {"value": []}, call=f"{request.method} ARM {kind} list")


# Every program starts with the same lines: what the platform's runtime holds before it loads
# the function (a Lambda context, the host library of Cloud Functions or of the Azure worker).
LAMBDA_PRELUDE = """\
import json, types
context = types.SimpleNamespace(
    function_name="mutguard-worker", memory_limit_in_mb=1024, aws_request_id="bench",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:mutguard-worker")
event = json.loads({event!r})
"""
GCP_PRELUDE = """\
import base64, json
import functions_framework
from cloudevents.http import CloudEvent
message = {{"data": base64.b64encode({payload!r}.encode()).decode(), "attributes": {{}},
            "messageId": "1", "publishTime": "2026-12-01T06:00:00Z"}}
event = CloudEvent({{"type": "google.cloud.pubsub.topic.v1.messagePublished",
                    "source": "//pubsub.googleapis.com/projects/p/topics/mutguard-scan"}},
                   {{"message": message, "subscription": "projects/p/subscriptions/s"}})
"""
AZURE_PRELUDE = """\
import azure.functions as func
message = func.QueueMessage(id="bench", body={payload!r}.encode())
"""

AWS_HANDLER = """\
from mutguard.functions.aws_lambda.worker import handler
handler(event, context)
"""
GCP_HANDLER = """\
from mutguard.functions.gcp.main import on_message
on_message(event)
"""
AZURE_HANDLER = """\
from mutguard.functions.azure.function_app import scan_target
scan_target(message)
"""

AWS_FLOOR = """\
import os
import boto3
from botocore.config import Config

def handler(event, context):
    for record in event["Records"]:
        target = json.loads(record["body"])["targets"][0]
        role = os.environ["MUTGUARD_ROLE_ARN"].replace("{account}", target["account"])
        config = Config(retries={"mode": "adaptive"})
        sts = boto3.Session().client("sts", config=config)
        sts.assume_role(RoleArn=role, RoleSessionName="mutguard")

handler(event, context)
"""
GCP_FLOOR = """\
import os
import google.auth
from google.cloud import container_v1

@functions_framework.cloud_event
def on_message(cloud_event):
    payload = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    client = container_v1.ClusterManagerClient(
        credentials=credentials, transport="rest",
        client_options={"api_endpoint": os.environ["MUTGUARD_GKE_ENDPOINT"]})
    project = payload["targets"][0]["account"]
    client.list_clusters(parent=f"projects/{project}/locations/-")

on_message(event)
"""
AZURE_FLOOR = """\
import json, os
from azure.identity import DefaultAzureCredential
from azure.mgmt.containerservice import ContainerServiceClient

app = func.FunctionApp()

@app.queue_trigger(arg_name="message", queue_name="mutguard-scan", connection="Storage")
def scan_target(message):
    subscription = json.loads(message.get_body())["targets"][0]["account"]
    client = ContainerServiceClient(DefaultAzureCredential(), subscription,
                                    base_url=os.environ["MUTGUARD_ARM_ENDPOINT"])
    list(client.managed_clusters.list())

scan_target(message)
"""


def scan_payload(provider: str, account: str, region: str) -> str:
    """A dispatcher's scan message: one provider, account and region, published."""
    target = {"provider": provider, "account": account, "region": region}
    return json.dumps({"action": "scan", "targets": [target], "publish": True})


def sqs_event(body: str) -> str:
    """An SQS batch of one message, as Lambda's event source mapping hands it to the worker."""
    queue = f"arn:aws:sqs:us-east-1:{AWS_ACCOUNT}:mutguard-scan"
    record = {
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764914400000"},
        "messageAttributes": {
            "run_id": {"stringValue": "bench-run", "dataType": "String"},
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": queue,
        "awsRegion": "us-east-1",
    }
    return json.dumps({"Records": [record]})


@dataclass
class Cloud:
    """One cloud's scan handler and floor, run against its local servers."""

    name: str
    handler: str  # the entry point, as the report names it
    floor: str
    first_call: str
    prelude: str
    handler_code: str
    floor_code: str
    serve: Callable[[Recorder, Path], Iterator[dict[str, str]]]

    def program(self, code: str) -> str:
        return self.prelude + code


@contextmanager
def aws_servers(recorder: Recorder, workdir: Path) -> Iterator[dict[str, str]]:
    (workdir / "aws-config").write_text("")
    with serving(aws_answer, recorder) as sts:
        yield {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_SESSION_TOKEN": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": sts.url,
            "AWS_CONFIG_FILE": str(workdir / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(workdir / "aws-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": "mutguard-worker",
            "MUTGUARD_ROLE_ARN": ROLE_TEMPLATE,
        }


@contextmanager
def gcp_servers(recorder: Recorder, workdir: Path) -> Iterator[dict[str, str]]:
    with serving(gcp_answer, recorder) as server:
        host = server.url.removeprefix("http://")
        yield {
            # google-auth's metadata server (read once, at import) and the GKE API.
            "GCE_METADATA_HOST": host,
            "GCE_METADATA_IP": host,
            "CLOUDSDK_CONFIG": str(workdir / "gcloud"),
            "MUTGUARD_GKE_ENDPOINT": server.url,
        }


@contextmanager
def azure_servers(recorder: Recorder, workdir: Path) -> Iterator[dict[str, str]]:
    tls, ca_file = self_signed(workdir)
    with (
        serving(azure_identity_answer, recorder) as identity,
        serving(azure_arm_answer, recorder, tls) as arm,
    ):
        yield {
            "IDENTITY_ENDPOINT": f"{identity.url}/msi/token",
            "IDENTITY_HEADER": IDENTITY_HEADER,
            "REQUESTS_CA_BUNDLE": str(ca_file),
            "MUTGUARD_ARM_ENDPOINT": arm.url,
        }


CLOUDS = {
    "aws": Cloud(
        "aws",
        "worker.handler (SQS scan message)",
        "boto3 STS client",
        "sts:AssumeRole of MUTGUARD_ROLE_ARN",
        LAMBDA_PRELUDE.format(event=sqs_event(scan_payload("eks", AWS_ACCOUNT, "eu-west-1"))),
        AWS_HANDLER,
        AWS_FLOOR,
        aws_servers,
    ),
    "gcp": Cloud(
        "gcp",
        "main.on_message (Pub/Sub CloudEvent)",
        "container_v1 REST client",
        "GKE clusters.list (after the metadata server's token)",
        GCP_PRELUDE.format(payload=scan_payload("gke", GCP_PROJECT, "europe-west1")),
        GCP_HANDLER,
        GCP_FLOOR,
        gcp_servers,
    ),
    "azure": Cloud(
        "azure",
        "function_app.scan_target (queue message)",
        "ContainerServiceClient",
        "ARM managedClusters list (after the managed identity's token)",
        AZURE_PRELUDE.format(payload=scan_payload("aks", AZURE_SUBSCRIPTION, "westeurope")),
        AZURE_HANDLER,
        AZURE_FLOOR,
        azure_servers,
    ),
}


# --- Running the programs ---------------------------------------------------------------------


def clean_environment(extra: dict[str, str], workdir: Path) -> dict[str, str]:
    """The machine's environment without what would send a client elsewhere, and with a bytecode
    cache of the bench's own, which the warm-up fills: the tree's `.pyc` of a module edited since
    it was compiled is stale, and with PYTHONDONTWRITEBYTECODE set it stays so, so the side that
    imports that module would compile it on every run."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(FOREIGN_ENV) and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "bytecode")
    return {**env, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1", **extra}


@dataclass
class Run:
    seconds: float  # from the spawn to the first call's arrival
    cpu: float  # the program's own CPU time (user and system), until it was stopped there
    call: str
    stderr: str


def first_call(
    code: str, env: dict[str, str], recorder: Recorder, workdir: Path, *options: str
) -> Run:
    """Start a fresh interpreter running `code`; the time from its start to its first cloud API
    call. The program is stopped there."""
    recorder.reset(hold=bool(options))
    # A temporary working directory: `python -c` puts it first on sys.path, and the repository
    # root holds directories (functions/, providers/) that would shadow nothing but blur the run.
    with tempfile.TemporaryFile("w+", dir=workdir) as stderr:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, *options, "-c", code],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = started + FIRST_CALL_TIMEOUT
            while not recorder.wait(0.05):
                if process.poll() is not None or time.monotonic() > deadline:
                    stderr.seek(0)
                    raise BenchError(
                        f"the program made no cloud API call (exit status {process.returncode})"
                        f":\n{code}\n{stderr.read()[-3000:]}"
                    )
        finally:
            process.kill()
            recorder.release()
        # Reaped here rather than by Popen.wait, for the CPU time it used.
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        assert recorder.arrival is not None and recorder.call is not None
        cpu = usage.ru_utime + usage.ru_stime
        return Run(recorder.arrival - started, cpu, recorder.call, stderr.read())


@dataclass
class Timing:
    """The handler's and the floor's runs, one pair per round."""

    handler: list[Run] = field(default_factory=list)
    floor: list[Run] = field(default_factory=list)

    def median(self, side: str, measure: str = "seconds") -> float:
        return statistics.median(getattr(run, measure) for run in getattr(self, side))

    def ratios(self, measure: str = "seconds") -> tuple[float, float, float]:
        """The median and interquartile range of the per-round ratios: a round's handler and
        floor ran one after the other, so the machine's changing load cancels out."""
        ratios = [
            getattr(h, measure) / getattr(f, measure)
            for h, f in zip(self.handler, self.floor, strict=True)
        ]
        if len(ratios) < 2:
            return ratios[0], ratios[0], ratios[0]
        low, median, high = statistics.quantiles(ratios, n=4, method="inclusive")
        return median, low, high

    @property
    def calls(self) -> set[str]:
        return {run.call for run in [*self.handler, *self.floor]}


def measure(cloud: Cloud, workdir: Path, repeat: int, import_runs: int) -> tuple[Timing, list[str]]:
    """Interleaved runs of the handler and the floor after one warm-up of each, and the
    handler's heaviest imports beyond the floor's."""
    recorder = Recorder()
    timing = Timing()
    with cloud.serve(recorder, workdir) as extra:
        env = clean_environment(extra, workdir)
        programs = {
            "handler": cloud.program(cloud.handler_code),
            "floor": cloud.program(cloud.floor_code),
        }
        for code in programs.values():  # warm the OS file cache and compile the bytecode
            first_call(code, env, recorder, workdir)
        for round_ in range(repeat):
            # Alternate which goes first, so neither always follows the other.
            order = ["handler", "floor"] if round_ % 2 == 0 else ["floor", "handler"]
            for side in order:
                getattr(timing, side).append(first_call(programs[side], env, recorder, workdir))
        if len(timing.calls) != 1:
            raise BenchError(
                f"{cloud.name}: the handler and the floor differ in their first call: "
                + ", ".join(sorted(timing.calls))
            )
        costs = []
        for _ in range(import_runs):
            trees = {
                side: import_tree(
                    first_call(code, env, recorder, workdir, "-X", "importtime").stderr
                )
                for side, code in programs.items()
            }
            costs.append(import_costs(trees["handler"], trees["floor"]))
    return timing, heaviest_additions(costs)


# --- What the handler imports beyond the floor ------------------------------------------------


@dataclass
class ImportNode:
    """One line of `-X importtime`: a module and what importing it cost, its imports included."""

    module: str
    cumulative_us: int
    children: list[ImportNode] = field(default_factory=list)


_IMPORTTIME = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \| ( *)(\S+)$")


def import_tree(stderr: str) -> list[ImportNode]:
    """The imports a program made, as a tree (`-X importtime` prints each after its children,
    indented two spaces per level)."""
    pending: dict[int, list[ImportNode]] = {}
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match is None:
            continue
        level = len(match[2]) // 2
        node = ImportNode(match[3], int(match[1]), pending.pop(level + 1, []))
        pending.setdefault(level, []).append(node)
    return pending.get(0, [])


def modules_of(nodes: list[ImportNode]) -> set[str]:
    return {n.module for n in nodes} | {m for n in nodes for m in modules_of(n.children)}


def added_imports(handler: list[ImportNode], floor: set[str]) -> list[ImportNode]:
    """The outermost imports of the handler that its floor does not make; mutguard's own modules
    are looked into, since what they cost is what they import."""
    added = []
    for node in handler:
        if node.module in floor or node.module.split(".")[0] == "mutguard":
            added += added_imports(node.children, floor)
        else:
            added.append(node)
    return added


def import_costs(handler: list[ImportNode], floor: list[ImportNode]) -> Counter[str]:
    """What one run of the handler imported beyond its floor, in microseconds: each third-party
    package (its outermost imports, what they import included) and each of mutguard's own
    modules (its body alone: models built, patterns compiled)."""
    costs: Counter[str] = Counter()
    for node in added_imports(handler, modules_of(floor)):
        costs[node.module.split(".")[0]] += node.cumulative_us
    for node in _walk(handler):
        if node.module.split(".")[0] == "mutguard":
            costs[node.module] += node.cumulative_us - sum(c.cumulative_us for c in node.children)
    return costs


def heaviest_additions(runs: list[Counter[str]], count: int = 6) -> list[str]:
    """The median cost of each addition over the runs, heaviest first."""
    names = set().union(*runs)
    median = {name: statistics.median(run[name] for run in runs) for name in names}
    ranked = sorted(names, key=median.__getitem__, reverse=True)
    own = [name for name in ranked if name.split(".")[0] == "mutguard"]
    packages = [name for name in ranked if name not in own and median[name] >= 500]
    listed = ", ".join(f"{name} {median[name] / 1000:.0f} ms" for name in packages[:count])
    lines = [listed or "no other package"]
    modules = ", ".join(f"{name} {median[name] / 1000:.0f}" for name in own[:count])
    total = sum(median[name] for name in own)
    lines.append(f"mutguard's own module bodies {total / 1000:.0f} ms ({modules} ...)")
    return lines


def _walk(nodes: list[ImportNode]) -> Iterator[ImportNode]:
    for node in nodes:
        yield node
        yield from _walk(node.children)


# --- The Lambda package -----------------------------------------------------------------------


def lambda_zip() -> Path:
    if not LAMBDA_ZIP.exists():
        log(f"{LAMBDA_ZIP.relative_to(ROOT)} is missing: building it ...")
        done = subprocess.run(
            [sys.executable, str(ROOT / "release" / "package.py"), "aws"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if done.returncode != 0:
            raise BenchError(f"release/package.py failed:\n{done.stderr[-2000:]}")
    return LAMBDA_ZIP


def lambda_sizes(path: Path) -> Counter[str]:
    """Unzipped bytes per top-level name, without the runtime's SDK."""
    sizes: Counter[str] = Counter()
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            top = info.filename.split("/")[0]
            if top not in LAMBDA_RUNTIME_SDK:
                sizes["(metadata)" if top.endswith(".dist-info") else top] += info.file_size
    return sizes


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of each program")
    parser.add_argument(
        "--cloud", choices=sorted(CLOUDS), action="append", help="only this cloud (repeatable)"
    )
    parser.add_argument(
        "--import-runs", type=int, default=3, help="`-X importtime` runs of each program"
    )
    parser.add_argument("--skip-zip", action="store_true", help="leave out the Lambda zip's size")
    args = parser.parse_args()
    clouds = [CLOUDS[name] for name in args.cloud or CLOUDS]
    log("mutguard cloud function cold start benchmark: process start to first cloud API call")
    log(
        f"{args.repeat} rounds of a fresh handler and a fresh floor, after one warm-up each; "
        "ratio: the median of the rounds' ratios"
    )
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="mutguard-bench-") as tmp:
            workdir = Path(tmp)
            for cloud in clouds:
                timing, heaviest = measure(cloud, workdir, args.repeat, args.import_runs)
                ratio, low, high = timing.ratios()
                cpu_ratio, cpu_low, cpu_high = timing.ratios("cpu")
                results.append(ok := ratio <= TARGET_RATIO)
                (call,) = timing.calls
                log()
                log(f"  {cloud.name}: {cloud.handler} against {cloud.floor}")
                log(f"    first call: {cloud.first_call} (seen: {call})")
                log(
                    f"    wall  handler {timing.median('handler'):6.3f}s  floor "
                    f"{timing.median('floor'):6.3f}s  ratio {ratio:4.2f}x "
                    f"(IQR {low:4.2f}-{high:4.2f})  target <= {TARGET_RATIO:g}x  {verdict(ok)}"
                )
                log(
                    f"    cpu   handler {timing.median('handler', 'cpu'):6.3f}s  floor "
                    f"{timing.median('floor', 'cpu'):6.3f}s  ratio {cpu_ratio:4.2f}x "
                    f"(IQR {cpu_low:4.2f}-{cpu_high:4.2f})"
                )
                log(
                    "    imports before the call beyond the floor's, heaviest first "
                    f"(ms, median of {args.import_runs} `-X importtime` runs):"
                )
                for line in heaviest:
                    log(f"      {line}")
            if not args.skip_zip:
                path = lambda_zip()
                sizes = lambda_sizes(path)
                unzipped = sum(sizes.values())
                results.append(ok := unzipped < TARGET_LAMBDA_BYTES)
                log()
                log(
                    f"  {path.relative_to(ROOT)} unzipped, without "
                    f"{', '.join(LAMBDA_RUNTIME_SDK)}: {megabytes(unzipped)} (zipped "
                    f"{megabytes(path.stat().st_size)}; target < "
                    f"{megabytes(TARGET_LAMBDA_BYTES)})  {verdict(ok)}"
                )
                largest = ", ".join(
                    f"{name} {megabytes(size)}" for name, size in sizes.most_common(6)
                )
                log(f"    largest: {largest}")
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    log()
    log("all targets met" if all(results) else "some targets missed (reported, not enforced)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
