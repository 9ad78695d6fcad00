"""Least privilege, measured: the AWS calls a scheduled scan and publish really make, against
the IAM policies the modules really create.

The deployment (servers/aws_deployment.py) has every sink the AWS module can turn on: the
DynamoDB state store, the Secrets Manager secret source (Slack's webhook), and the sqs, sns and
ses sinks. The packaged handlers run with each function's role; the AwsRecorder in front of
moto_server records every call with the role whose credentials signed it (the worker's calls in
the member account carry the member role's). Then:
- every call a role made is allowed by a statement of the policy moto holds for that role;
- every action a statement grants was called on one of its resources, or is listed in
  CALLED_BY_AWS with why mutguard's code never calls it.
KMS statements exist only with customer-managed keys, which this deployment does not use.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from servers.aws_deployment import (
    MEMBER_ACCOUNT,
    MODULES,
    NAME,
    SCANNER_ACCOUNT,
    Deployment,
    build_lambda_package,
)
from servers.aws_recorder import Call
from servers.terraform import Running, TerraformRoot, aws_provider, find_mirror

pytest_plugins = ["servers.aws_deployment_plugin"]

ROLES = {
    "dispatcher": (SCANNER_ACCOUNT, f"{NAME}-dispatcher"),
    "worker": (SCANNER_ACCOUNT, f"{NAME}-worker"),
    "schedule": (SCANNER_ACCOUNT, f"{NAME}-schedule"),
    "member": (MEMBER_ACCOUNT, "MutguardReadOnly"),
}
# API operations authorized by an IAM action of another name.
IAM_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# Statements (role, Sid) that AWS services use with the role, never mutguard's code.
CALLED_BY_AWS = {
    ("dispatcher", "WriteOwnLogs"): "the Lambda runtime sends the function's logs",
    ("dispatcher", "SendTraces"): "Lambda's active tracing sends the X-Ray segments",
    ("dispatcher", "DeadLetterFailedDispatches"): "Lambda dead-letters a failed async invocation",
    ("worker", "WriteOwnLogs"): "the Lambda runtime sends the function's logs",
    ("worker", "SendTraces"): "Lambda's active tracing sends the X-Ray segments",
    ("worker", "DrainScanQueue"): "Lambda's SQS event source mapping polls and deletes",
    ("worker", "ReadReportsThroughLinks"): "whoever opens an alert's presigned link reads with it",
    ("schedule", "InvokeDispatcher"): "EventBridge Scheduler invokes the dispatcher",
    ("schedule", "DeadLetterFailedInvocations"): "EventBridge Scheduler dead-letters a failure",
}
# Each AWS sink kind, state store and secret source the module turns on: the action it needs.
SINK_ACTIONS = {
    "sqs sink": ("sqs:SendMessage", "security-findings"),
    "sns sink": ("sns:Publish", "security-findings"),
    "ses sink": ("ses:SendRawEmail", "identity/mutguard@example.com"),
    "securityhub sink": ("securityhub:BatchImportFindings", "product/"),
    "dynamodb state store: load": ("dynamodb:BatchGetItem", "table/mutguard-state"),
    "dynamodb state store: save": ("dynamodb:BatchWriteItem", "table/mutguard-state"),
    "dynamodb state store: claim": ("dynamodb:PutItem", "table/mutguard-state"),
    "dynamodb state store: count a run's part": ("dynamodb:UpdateItem", "table/mutguard-state"),
    "secrets manager secret source": ("secretsmanager:GetSecretValue", "mutguard/slack"),
    "s3 report store": ("s3:PutObject", f":::{NAME}-reports-{SCANNER_ACCOUNT}-us-east-1/reports/"),
}
# What the dispatcher calls besides the queue: it records a publishing run in the state table
# before queueing its scans, for the fleet digest.
DISPATCHER_STATE_ACTION = ("dynamodb:PutItem", "table/mutguard-state")


@dataclass(frozen=True)
class Action:
    role: str
    action: str
    resource: str


@dataclass(frozen=True)
class Grant:
    role: str
    sid: str
    action: str
    resources: tuple[str, ...]

    def allows(self, action: Action) -> bool:
        return (
            action.role == self.role
            and fnmatch.fnmatchcase(action.action, self.action)
            and any(fnmatch.fnmatchcase(action.resource, r) for r in self.resources)
        )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def grants(deployed: Deployment) -> list[Grant]:
    """Every (role, statement, action) the modules' inline policies allow, as moto holds them."""
    found = []
    for role, (account, name) in ROLES.items():
        iam = deployed.client("iam", account=None if account == SCANNER_ACCOUNT else account)
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
            document = json.loads(document) if isinstance(document, str) else document
            for statement in document["Statement"]:
                assert statement["Effect"] == "Allow" and "Condition" not in statement, statement
                found += [
                    Grant(role, statement["Sid"], action, tuple(as_list(statement["Resource"])))
                    for action in as_list(statement["Action"])
                ]
    return found


def resource(deployed: Deployment, call: Call) -> str:
    """The ARN IAM authorizes `call` against ("*" for actions without resource types)."""
    account = call.role_arn.split(":")[4] if call.role_arn else SCANNER_ACCOUNT
    region, params = call.region, call.params
    if call.service == "sqs":
        queue_account, queue = params["QueueUrl"].rstrip("/").split("/")[-2:]
        return f"arn:aws:sqs:{region}:{queue_account}:{queue}"
    if call.service == "sns":
        return str(params["TopicArn"])
    if call.service == "ses":
        return f"arn:aws:ses:{region}:{account}:identity/{params['Source']}"
    if call.service == "dynamodb":
        (table,) = params.get("RequestItems") or [params["TableName"]]
        return f"arn:aws:dynamodb:{region}:{account}:table/{table}"
    if call.service == "secretsmanager":
        secrets = deployed.client("secretsmanager")
        return str(secrets.describe_secret(SecretId=params["SecretId"])["ARN"])
    if call.service == "sts":
        return str(params["RoleArn"])
    if call.service == "s3":
        return f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"
    if call.service == "securityhub":
        # BatchImportFindings is authorized against the product the findings name.
        (product,) = {finding["ProductArn"] for finding in params["Findings"]}
        return str(product)
    if call.service == "eks" and "name" in params:
        cluster = params["name"]
        if "principalArn" in params:
            role = params["principalArn"].split(":")[-1]
            return f"arn:aws:eks:{region}:{account}:access-entry/{cluster}/{role}/0"
        if call.operation == "DescribeIdentityProviderConfig":
            config = params["identityProviderConfig"]["name"]
            return (
                f"arn:aws:eks:{region}:{account}:identityproviderconfig/{cluster}/oidc/{config}/0"
            )
        return f"arn:aws:eks:{region}:{account}:cluster/{cluster}"
    return "*"  # eks:ListClusters, ec2:DescribeRegions


@pytest.fixture(scope="module")
def recorded(aws_deployment: Deployment) -> Iterator[tuple[Deployment, list[Action]]]:
    """The actions each role's credentials made during one scheduled run."""
    deployed = aws_deployment.ensure_applied()
    run = deployed.scheduled_run()
    assert run.worker_answer == {"batchItemFailures": []}, run.worker_answer
    role_names = {
        f"arn:aws:iam::{account}:role/{name}": role for role, (account, name) in ROLES.items()
    }
    actions = []
    for call in deployed.recorder.calls():
        role = role_names.get(call.role_arn or "")
        if role is None:
            continue  # the test's own calls, with moto's dummy keys
        assert call.status == 200, call
        action = f"{call.service}:{call.operation}"
        actions.append(Action(role, IAM_ACTIONS.get(action, action), resource(deployed, call)))
    yield deployed, actions


def test_every_call_is_allowed_by_the_role_that_made_it(recorded):
    deployed, actions = recorded
    granted = grants(deployed)
    assert {a.role for a in actions} == {"dispatcher", "worker", "member"}
    denied = sorted({a for a in actions if not any(g.allows(a) for g in granted)}, key=str)
    assert denied == []


def test_every_grant_is_used_by_the_code_or_by_aws(recorded):
    deployed, actions = recorded
    granted = grants(deployed)
    unused = sorted(
        (g.role, g.sid, g.action)
        for g in granted
        if (g.role, g.sid) not in CALLED_BY_AWS and not any(g.allows(a) for a in actions)
    )
    assert unused == []
    # Each reason names a statement that exists and that the code indeed never uses.
    statements = {(g.role, g.sid) for g in granted}
    assert set(CALLED_BY_AWS) <= statements
    used = {(g.role, g.sid) for g in granted if any(g.allows(a) for a in actions)}
    assert used.isdisjoint(CALLED_BY_AWS)


@pytest.mark.parametrize("kind", SINK_ACTIONS)
def test_each_aws_sink_store_and_secret_source_is_granted_exactly_what_it_calls(recorded, kind):
    deployed, actions = recorded
    action, resource_suffix = SINK_ACTIONS[kind]
    made = [
        a
        for a in actions
        if a.action == action and resource_suffix in a.resource and a.role != "dispatcher"
    ]
    assert made and {a.role for a in made} == {"worker"}
    worker_grants = [g for g in grants(deployed) if g.role == "worker" and g.action == action]
    assert worker_grants, f"{action} is not granted"
    # Granted on the sink's own resources only: never on "*" (the report store: the objects
    # under its bucket's prefix, `arn:aws:s3:::BUCKET/PREFIX/*`).
    assert all("*" not in r.removesuffix("/*") for g in worker_grants for r in g.resources)


def test_the_dispatcher_writes_only_the_run_record_to_the_state_table(recorded):
    deployed, actions = recorded
    action, resource_suffix = DISPATCHER_STATE_ACTION
    dispatcher = {(a.action, a.resource) for a in actions if a.role == "dispatcher"}
    assert {a for a, _ in dispatcher} == {"sqs:SendMessage", action}
    assert any(r.endswith(resource_suffix) for a, r in dispatcher if a == action)
    granted = [g for g in grants(deployed) if g.role == "dispatcher" and g.action == action]
    assert granted and all(r.endswith(resource_suffix) for g in granted for r in g.resources)


def test_the_member_role_is_read_only_and_reads_what_it_is_granted(recorded):
    _, actions = recorded
    member = {a.action for a in actions if a.role == "member"}
    assert member == {
        "ec2:DescribeRegions",
        "eks:ListClusters",
        "eks:DescribeCluster",
        "eks:ListAccessEntries",
        "eks:DescribeAccessEntry",
        "eks:ListAssociatedAccessPolicies",
        "eks:ListIdentityProviderConfigs",
        "eks:DescribeIdentityProviderConfig",
    }


# --- Which accounts the worker may enter -------------------------------------------------


def worker_scope_plan(
    deployed: Deployment, directory: Path, **inputs: Any
) -> tuple[TerraformRoot, Running]:
    """`terraform plan` of the scanner module with member_account_ids empty."""
    mirror = find_mirror()
    assert mirror is not None
    root = TerraformRoot(directory, mirror)
    archive, _ = build_lambda_package(directory)
    arguments = {
        "source": str(MODULES / "aws"),
        "lambda_zip_path": str(archive),
        "targets": [{"provider": "eks", "account": MEMBER_ACCOUNT}],
        **inputs,
    }
    body = "\n".join(f"  {key} = {json.dumps(value)}" for key, value in arguments.items())
    root.write(aws_provider(deployed.endpoint, "us-east-1") + f'module "mutguard" {{\n{body}\n}}\n')
    return root, root.start("init", "-input=false", "-backend=false")


def test_the_worker_may_assume_member_roles_only_in_named_accounts_or_the_organization(
    aws_deployment: Deployment, tmp_path: Path
):
    deployed = aws_deployment.ensure_applied()
    unscoped, unscoped_init = worker_scope_plan(deployed, tmp_path / "unscoped")
    scoped, scoped_init = worker_scope_plan(
        deployed, tmp_path / "organization", organization_id="o-a1b2c3d4e5"
    )
    unscoped_init.wait()
    scoped_init.wait()
    refused = unscoped.start("plan", "-input=false")
    allowed = scoped.start("plan", "-input=false")
    allowed.wait()
    with pytest.raises(AssertionError, match="organization_id"):
        refused.wait()
