"""terraform/modules/aws and aws-member applied to moto_server, once per session, and the
packaged Lambda handlers run locally with the environment Terraform gave the functions.

The `aws_deployment` fixture (servers/aws_deployment_plugin.py, which test modules list in
`pytest_plugins`) shares one deployment between test modules: applying the scanner module takes
most of a minute, as the provider waits about 25 s for each of two layers of SQS queues.

Accounts: the scanner module goes into moto's default account, the member module into
MEMBER_ACCOUNT (moto attributes whatever assumed-role credentials create to the role's account).
Everything reaches moto through the AwsRecorder, which records each call and fills moto's gaps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
import zipfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3

from .aws import DEFAULT_ACCOUNT, DEFAULT_REGION, DUMMY_KEY, create_cluster
from .aws_recorder import AwsRecorder
from .chat import ChatServer
from .moto import MotoServer
from .terraform import TerraformRoot, aws_provider, wait_all

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "terraform" / "modules"

SCANNER_ACCOUNT = DEFAULT_ACCOUNT
MEMBER_ACCOUNT = "210987654321"
OTHER_REGION = "eu-west-1"
EXTERNAL_ID = "mutguard-7f3c1a2e"
NAME = "mutguard"
STATE_TABLE = "mutguard-state"
# The member account's clusters, (region, name): the module gives the first an access entry, the
# test root the other (the module covers its provider's region only).
MEMBER_CLUSTERS = ((DEFAULT_REGION, "payments"), (OTHER_REGION, "checkout"))
SLACK_HOOK = "/services/T0MUTGUARD/B0MUTGUARD/terraformWebhookSecret0123456789"
SLACK_SECRET = "mutguard/slack"
FINDINGS = "security-findings"  # the sqs sink's queue and the sns sink's topic
SNS_INBOX = "security-findings-sns"  # subscribed to the topic, to read what was published
SES_SENDER = "mutguard@example.com"
SES_RECIPIENT = "security@example.com"
SCANNER_OUTPUTS = (
    *("dispatcher_function_name", "worker_function_name", "worker_role_arn"),
    *("dispatcher_role_arn", "queue_url", "queue_arn", "dead_letter_queue_arn"),
    *("dispatch_dead_letter_queue_url", "schedule_arn", "state_table_name", "state_table_arn"),
    *("log_group_names", "member_role_arn_template", "report_bucket_name", "report_store"),
)
# What the dispatcher is handed: the schedule's Input, as read back from moto, with in-cluster
# reads off, as moto's cluster endpoints are fake amazonaws.com names never dialled in tests.
NO_IN_CLUSTER_READS = {"include_rbac": False}

# Runs one handler the way the Lambda runtime does: the deployed package first on sys.path
# (as /var/task is), the handler named by the function's configuration, a context object.
_RUNNER = """
import importlib, json, sys
package, handler, event_path, result_path, name, arn, request_id = sys.argv[1:]
sys.path.insert(0, package)
module, _, attribute = handler.rpartition(".")
function = getattr(importlib.import_module(module), attribute)
import mutguard
if not mutguard.__file__.startswith(package):
    raise SystemExit(f"mutguard came from {mutguard.__file__}, not the package")
class Context:
    function_name = name
    memory_limit_in_mb = 1024
    invoked_function_arn = arn
    aws_request_id = request_id
with open(event_path) as f:
    event = json.load(f)
result = function(event, Context())
with open(result_path, "w") as f:
    json.dump(result, f)
"""


def build_lambda_package(directory: Path) -> tuple[Path, Path]:
    """The zip `make package` builds, less its third-party dependencies (the tests run on the
    venv's): mutguard laid out as the wheel installs it (pyproject's package-dir). Returns the
    zip and the same tree unpacked, which the handlers are run from."""
    layout = {
        "mutguard": ROOT / "mutguard",
        "mutguard/providers": ROOT / "providers",
        "mutguard/functions": ROOT / "functions",
        "mutguard/schemas": ROOT / "schemas",
    }
    unpacked = directory / "package"
    archive = directory / "mutguard-aws-lambda.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for target, source in layout.items():
            for path in sorted(source.rglob("*")):
                if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                    continue
                name = f"{target}/{path.relative_to(source).as_posix()}"
                zf.write(path, name)
        zf.extractall(unpacked)
    return archive, unpacked


def session(account: str | None = None, endpoint: str = "") -> boto3.Session:
    """moto's default account with the dummy keys, or `account` through sts:AssumeRole."""
    base = boto3.Session(
        aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY, region_name=DEFAULT_REGION
    )
    if account is None:
        return base
    return role_session(base, f"arn:aws:iam::{account}:role/terraform", endpoint)


def role_session(
    base: boto3.Session, role_arn: str, endpoint: str, external_id: str | None = None
) -> boto3.Session:
    params = {"RoleArn": role_arn, "RoleSessionName": "mutguard-test"}
    if external_id is not None:
        params["ExternalId"] = external_id
    credentials = base.client("sts", endpoint_url=endpoint).assume_role(**params)["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=DEFAULT_REGION,
    )


@dataclass
class ScheduledRun:
    """One scheduled run done by the packaged handlers: what each returned and saw."""

    schedule_input: dict[str, Any]
    dispatched: dict[str, Any]
    queued: list[dict[str, Any]]  # the SQS messages the dispatcher left on the scan queue
    worker_answer: dict[str, Any]
    after_worker: list[dict[str, Any]]  # what is left on the scan queue afterwards


@dataclass
class Deployment:
    directory: Path
    moto: MotoServer
    recorder: AwsRecorder
    chat: ChatServer
    lambda_zip: Path
    package: Path
    scanner: TerraformRoot
    member: TerraformRoot
    scanner_plan: dict[str, Any] = field(default_factory=dict)
    scanner_outputs: dict[str, Any] = field(default_factory=dict)
    member_outputs: dict[str, Any] = field(default_factory=dict)
    sinks: dict[str, str] = field(default_factory=dict)
    destroyed: bool = False
    _run: ScheduledRun | None = None

    @property
    def endpoint(self) -> str:
        return self.recorder.url

    def client(self, service: str, account: str | None = None, region: str = DEFAULT_REGION) -> Any:
        return self.session_for(account).client(
            service, region_name=region, endpoint_url=self.endpoint
        )

    def session_for(self, account: str | None) -> boto3.Session:
        """One session per account (None: the default one), reused: each costs ~0.1 s."""
        return self._sessions.setdefault(account, session(account, self.endpoint))

    @cached_property
    def _sessions(self) -> dict[str | None, boto3.Session]:
        return {}

    # -- set-up ---------------------------------------------------------------------------

    def create_sinks(self) -> None:
        """What the sinks deliver to, made by their owner (not by the module)."""
        sqs, sns = self.client("sqs"), self.client("sns")
        findings_url = sqs.create_queue(QueueName=FINDINGS)["QueueUrl"]
        inbox_url = sqs.create_queue(QueueName=SNS_INBOX)["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])
        topic_arn = sns.create_topic(Name=FINDINGS)["TopicArn"]
        sns.subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=inbox_arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        self.client("ses").verify_email_identity(EmailAddress=SES_SENDER)
        secret = self.client("secretsmanager").create_secret(
            Name=SLACK_SECRET, SecretString=json.dumps({"webhook_url": self.chat.url + SLACK_HOOK})
        )
        self.sinks = {
            "queue_url": f"https://sqs.{DEFAULT_REGION}.amazonaws.com/{SCANNER_ACCOUNT}/{FINDINGS}",
            "local_queue_url": findings_url,
            "queue_arn": f"arn:aws:sqs:{DEFAULT_REGION}:{SCANNER_ACCOUNT}:{FINDINGS}",
            "inbox_url": inbox_url,
            "topic_arn": topic_arn,
            "ses_identity_arn": (
                f"arn:aws:ses:{DEFAULT_REGION}:{SCANNER_ACCOUNT}:identity/{SES_SENDER}"
            ),
            "secret_arn": secret["ARN"],
        }

    def create_member_clusters(self) -> None:
        member = self.session_for(MEMBER_ACCOUNT)
        for region, name in MEMBER_CLUSTERS:
            create_cluster(_Endpointed(member, self.endpoint), region, name, version="1.31")
        # An OIDC provider on one cluster, so that reading it is part of every scan.
        self.recorder.add_oidc_config(MEMBER_ACCOUNT, DEFAULT_REGION, "payments", "corp-sso")

    def scanner_module(self) -> str:
        sinks_config = {
            "sinks": [
                {
                    "kind": "slack",
                    "options": {
                        "webhook_url_env": f"aws-secretsmanager:{SLACK_SECRET}#webhook_url"
                    },
                },
                {"kind": "sqs", "options": {"queue_url": self.sinks["queue_url"]}},
                {"kind": "sns", "options": {"topic_arn": self.sinks["topic_arn"]}},
                {"kind": "ses", "options": {"sender": SES_SENDER, "recipients": [SES_RECIPIENT]}},
                {"kind": "securityhub", "options": {"account_id": SCANNER_ACCOUNT}},
            ]
        }
        inputs = {
            "source": str(MODULES / "aws"),
            "lambda_zip_path": str(self.lambda_zip),
            "schedule_timezone": "Europe/Berlin",
            # One target per region, one covering every enabled region (ec2:DescribeRegions).
            "targets": [
                {"provider": "eks", "account": MEMBER_ACCOUNT},
                {
                    "provider": "eks",
                    "account": MEMBER_ACCOUNT,
                    "region": OTHER_REGION,
                    "cluster": "checkout",
                },
            ],
            "member_account_ids": [MEMBER_ACCOUNT],
            "member_external_id": EXTERNAL_ID,
            "sinks": ["slack", "sqs", "sns", "ses", "securityhub"],
            "sinks_config": json.dumps(sinks_config),  # JSON is YAML
            "secret_arns": [self.sinks["secret_arn"]],
            "sqs_sink_queue_arns": [self.sinks["queue_arn"]],
            "sns_sink_topic_arns": [self.sinks["topic_arn"]],
            "ses_identity_arns": [self.sinks["ses_identity_arn"]],
            "securityhub_product_arns": [
                f"arn:aws:securityhub:{DEFAULT_REGION}:{SCANNER_ACCOUNT}:product/"
                f"{SCANNER_ACCOUNT}/default"
            ],
            "state_table_deletion_protection": False,
            "report_bucket_enabled": True,
            "log_retention_in_days": 30,
            "tags": {"team": "platform-security"},
        }
        body = "\n".join(f"  {key} = {json.dumps(value)}" for key, value in inputs.items())
        outputs = "".join(
            f'output "{name}" {{\n  value = module.mutguard.{name}\n}}\n'
            for name in SCANNER_OUTPUTS
        )
        return (
            aws_provider(self.endpoint, DEFAULT_REGION)
            + f'module "mutguard" {{\n{body}\n}}\n'
            + outputs
        )

    def member_module(self) -> str:
        worker_role = f"arn:aws:iam::{SCANNER_ACCOUNT}:role/{NAME}-worker"
        assume = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/terraform"
        (home_cluster,), (other_cluster,) = (
            [n for r, n in MEMBER_CLUSTERS if r == region]
            for region in (DEFAULT_REGION, OTHER_REGION)
        )
        return (
            aws_provider(self.endpoint, DEFAULT_REGION, role_arn=assume)
            + aws_provider(self.endpoint, OTHER_REGION, alias="other", role_arn=assume)
            + f"""
module "reader" {{
  source           = "{MODULES / "aws-member"}"
  scanner_role_arn = "{worker_role}"
  external_id      = "{EXTERNAL_ID}"
  clusters         = ["{home_cluster}"]
}}

# The module covers the provider's region; a cluster elsewhere gets its access entry here.
resource "aws_eks_access_entry" "other_region" {{
  provider          = aws.other
  cluster_name      = "{other_cluster}"
  principal_arn     = module.reader.role_arn
  type              = "STANDARD"
  kubernetes_groups = module.reader.kubernetes_groups
}}

output "role_arn" {{
  value = module.reader.role_arn
}}

output "access_entry_arns" {{
  value = merge(
    module.reader.access_entry_arns,
    {{ "{other_cluster}" = aws_eks_access_entry.other_region.access_entry_arn }},
  )
}}
"""
        )

    def apply(self) -> None:
        self.scanner.write(self.scanner_module())
        self.member.write(self.member_module())
        wait_all(*(root.start("init", "-input=false", "-backend=false") for root in self.roots))
        self.scanner.run("plan", "-out=tfplan", "-input=false")
        # The member module needs nothing of the scanner's but the worker role's name, so both
        # are applied at once, and the plan is read meanwhile: the scanner's SQS queues keep
        # the provider waiting most of the time (it wants 6 equal answers 5 s apart).
        show = self.scanner.start("show", "-json", "tfplan")
        wait_all(
            self.scanner.start("apply", "-input=false", "tfplan"),
            self.member.start("apply", "-auto-approve", "-input=false"),
            show,
        )
        self.scanner_plan = json.loads(show.stdout)
        self.scanner_outputs = self.scanner.outputs()
        self.member_outputs = self.member.outputs()
        self.destroyed = False
        self._run = None

    @property
    def roots(self) -> tuple[TerraformRoot, TerraformRoot]:
        return self.scanner, self.member

    def destroy(self) -> None:
        wait_all(*(root.start("destroy", "-auto-approve", "-input=false") for root in self.roots))
        self.destroyed = True

    def ensure_applied(self) -> Deployment:
        if self.destroyed:
            self.apply()
        return self

    # -- the functions, run locally -------------------------------------------------------

    def function_configuration(self, name: str) -> dict[str, Any]:
        configuration: dict[str, Any] = self.client("lambda").get_function_configuration(
            FunctionName=name
        )
        return configuration

    def invoke(self, function_name: str, event: Any) -> Any:
        """Run the function's handler from the package with exactly its Lambda environment,
        its role's credentials, and botocore pointed at the recorder."""
        configuration = self.function_configuration(function_name)
        role = role_session(self.session_for(None), configuration["Role"], self.endpoint)
        credentials = role.get_credentials().get_frozen_credentials()
        request_id = str(uuid.uuid4())
        work = self.directory / "invocations" / request_id
        work.mkdir(parents=True)
        (work / "event.json").write_text(json.dumps(event))
        (work / "aws-config").write_text("")
        region = configuration["FunctionArn"].split(":")[3]
        env = {
            **configuration["Environment"]["Variables"],
            # What the Lambda runtime sets for every function.
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_SESSION_TOKEN": credentials.token or "",
            # Only here: every AWS call goes to the recorder in front of moto.
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_CONFIG_FILE": str(work / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(work / "aws-config"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PATH": "/usr/bin:/bin",
        }
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _RUNNER,
                str(self.package),
                configuration["Handler"],
                str(work / "event.json"),
                str(work / "result.json"),
                function_name,
                configuration["FunctionArn"],
                request_id,
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        (work / "output.log").write_text(result.stdout + result.stderr)  # the function's logs
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return json.loads((work / "result.json").read_text())

    def scheduled_run(self) -> ScheduledRun:
        """The schedule's dispatch, then the worker on what it queued, in the SQS event shape
        Lambda's event source mapping hands over. Done once; the recorder keeps its calls."""
        if self._run is not None:
            return self._run
        outputs = self.scanner_outputs
        schedule = self.client("scheduler").get_schedule(
            Name=outputs["schedule_arn"].rsplit("/", 1)[-1]
        )
        schedule_input = json.loads(schedule["Target"]["Input"])
        self.recorder.clear()
        dispatched = self.invoke(
            outputs["dispatcher_function_name"], {**schedule_input, **NO_IN_CLUSTER_READS}
        )
        queued = receive_all(self.client("sqs"), outputs["queue_url"])
        event = {"Records": [lambda_record(m, outputs["queue_arn"]) for m in queued]}
        worker_answer = self.invoke(outputs["worker_function_name"], event)
        after = receive_all(self.client("sqs"), outputs["queue_url"])
        self._run = ScheduledRun(schedule_input, dispatched, queued, worker_answer, after)
        return self._run


class _Endpointed:
    """A boto3 session whose clients all go to one endpoint (for servers.aws.create_cluster)."""

    def __init__(self, base: boto3.Session, endpoint: str) -> None:
        self._base, self._endpoint = base, endpoint

    def client(self, service: str, region_name: str | None = None) -> Any:
        return self._base.client(service, region_name=region_name, endpoint_url=self._endpoint)


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message on the queue, received as Lambda's poller does, and deleted."""
    received: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=0,
    ).get("Messages", []):
        received += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return received


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of the event Lambda's SQS event source mapping passes to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value["DataType"],
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
