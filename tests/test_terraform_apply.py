"""terraform/modules/aws and aws-member deployed for real, to moto_server, and read back.

Terraform installs the AWS provider from a local filesystem mirror (servers/terraform.py),
plans and applies both modules (servers/aws_deployment.py: the scanner in moto's default
account with every AWS sink on, the member role and its access entries in a second account),
then boto3 reads back what was created. The packaged handlers then run locally with exactly
the environment Terraform gave the functions: the dispatcher queues on the module's queue, the
worker assumes the module's member role with the external id, scans the member account's
clusters and publishes to every sink and the state table. Last, destroy leaves nothing behind.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from mutguard.functions.payload import parse_payload

from servers.aws_deployment import (
    EXTERNAL_ID,
    FINDINGS,
    MEMBER_ACCOUNT,
    MEMBER_CLUSTERS,
    NAME,
    SCANNER_ACCOUNT,
    SES_SENDER,
    SLACK_HOOK,
    STATE_TABLE,
    Deployment,
    receive_all,
    role_session,
)

pytest_plugins = ["servers.aws_deployment_plugin"]

HANDLERS = {
    "dispatcher": "mutguard.functions.aws_lambda.dispatcher.handler",
    "worker": "mutguard.functions.aws_lambda.worker.handler",
}
MEMBER_ROLE = f"arn:aws:iam::{MEMBER_ACCOUNT}:role/MutguardReadOnly"
WORKER_ROLE = f"arn:aws:iam::{SCANNER_ACCOUNT}:role/{NAME}-worker"
# Everything the scanner module creates, by address.
SCANNER_RESOURCES = {
    "aws_sqs_queue.scan",
    "aws_sqs_queue.dead_letter",
    "aws_sqs_queue.dispatch_dead_letter",
    "aws_dynamodb_table.state[0]",
    "aws_cloudwatch_log_group.dispatcher",
    "aws_cloudwatch_log_group.worker",
    "aws_iam_role.dispatcher",
    "aws_iam_role.worker",
    "aws_iam_role.scheduler",
    "aws_iam_role_policy.dispatcher",
    "aws_iam_role_policy.worker",
    "aws_iam_role_policy.scheduler",
    "aws_lambda_function.dispatcher",
    "aws_lambda_function.worker",
    "aws_lambda_event_source_mapping.worker",
    "aws_scheduler_schedule.dispatch",
    "aws_s3_bucket.reports[0]",
    "aws_s3_bucket_public_access_block.reports[0]",
    "aws_s3_bucket_ownership_controls.reports[0]",
    "aws_s3_bucket_server_side_encryption_configuration.reports[0]",
    "aws_s3_bucket_lifecycle_configuration.reports[0]",
    "aws_s3_bucket_policy.reports[0]",
}


@pytest.fixture
def deployed(aws_deployment: Deployment) -> Deployment:
    return aws_deployment.ensure_applied()


def queue_attributes(deployed: Deployment, url: str) -> dict[str, str]:
    answer = deployed.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    attributes: dict[str, str] = answer["Attributes"]
    return attributes


def role_policy(iam: Any, role: str) -> dict[str, Any]:
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


def statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    (found,) = [s for s in policy["Statement"] if s.get("Sid") == sid]
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- What the plan and apply created -----------------------------------------------------


def test_the_plan_creates_exactly_the_scanner_resources(deployed: Deployment):
    planned = {
        change["address"].removeprefix("module.mutguard.")
        for change in deployed.scanner_plan["resource_changes"]
        if change["mode"] == "managed"
    }
    assert planned == SCANNER_RESOURCES
    assert all(
        change["change"]["actions"] == ["create"]
        for change in deployed.scanner_plan["resource_changes"]
        if change["mode"] == "managed"
    )


def test_the_scan_queue_is_encrypted_and_dead_letters_to_its_own_queue(deployed: Deployment):
    outputs = deployed.scanner_outputs
    scan = queue_attributes(deployed, outputs["queue_url"])
    assert scan["QueueArn"] == outputs["queue_arn"]
    assert scan["SqsManagedSseEnabled"] == "true"
    redrive = json.loads(scan["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == outputs["dead_letter_queue_arn"]
    assert int(redrive["maxReceiveCount"]) == 3
    # Six times the worker's timeout (600 s), as AWS asks of a Lambda-drained queue.
    assert scan["VisibilityTimeout"] == "3600"
    assert scan["ReceiveMessageWaitTimeSeconds"] == "20"

    sqs = deployed.client("sqs")
    dead_letter_url = sqs.get_queue_url(QueueName=f"{NAME}-scan-dlq")["QueueUrl"]
    dead_letter = queue_attributes(deployed, dead_letter_url)
    assert dead_letter["SqsManagedSseEnabled"] == "true"
    assert dead_letter["MessageRetentionPeriod"] == "1209600"
    allowed = json.loads(dead_letter["RedriveAllowPolicy"])
    assert allowed == {"redrivePermission": "byQueue", "sourceQueueArns": [outputs["queue_arn"]]}
    dispatch_dlq = queue_attributes(deployed, outputs["dispatch_dead_letter_queue_url"])
    assert dispatch_dlq["SqsManagedSseEnabled"] == "true"


def test_the_schedule_invokes_the_dispatcher_with_the_dispatch_input(deployed: Deployment):
    outputs = deployed.scanner_outputs
    schedule = deployed.client("scheduler").get_schedule(Name=f"{NAME}-dispatch")
    assert schedule["Arn"] == outputs["schedule_arn"]
    assert schedule["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert schedule["State"] == "ENABLED"
    target = schedule["Target"]
    dispatcher = deployed.function_configuration(outputs["dispatcher_function_name"])
    assert target["Arn"] == dispatcher["FunctionArn"]
    assert target["RoleArn"].endswith(f":role/{NAME}-schedule")
    assert json.loads(target["Input"]) == {"action": "dispatch", "publish": True}
    assert target["DeadLetterConfig"]["Arn"].endswith(f":{NAME}-dispatch-dlq")
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 3}


def test_both_functions_run_the_contract_handlers_with_the_module_environment(
    deployed: Deployment,
):
    outputs = deployed.scanner_outputs
    environments = []
    for kind in ("dispatcher", "worker"):
        configuration = deployed.function_configuration(outputs[f"{kind}_function_name"])
        assert configuration["Handler"] == HANDLERS[kind]
        assert configuration["Runtime"] == "python3.12"
        assert configuration["Role"] == deployed.scanner_outputs[f"{kind}_role_arn"]
        environments.append(configuration["Environment"]["Variables"])
    dispatcher, worker = environments
    assert dispatcher == worker
    assert worker["MUTGUARD_QUEUE_URL"] == outputs["queue_url"]
    assert worker["MUTGUARD_ROLE_ARN"] == outputs["member_role_arn_template"]
    assert worker["MUTGUARD_ROLE_ARN"].format(account=MEMBER_ACCOUNT) == MEMBER_ROLE
    assert worker["MUTGUARD_EXTERNAL_ID"] == EXTERNAL_ID
    assert worker["MUTGUARD_STATE_STORE"] == f"dynamodb:{STATE_TABLE}"
    assert worker["MUTGUARD_SINKS"] == "slack,sqs,sns,ses,securityhub"
    assert json.loads(worker["MUTGUARD_TARGETS"])[0] == {
        "provider": "eks",
        "account": MEMBER_ACCOUNT,
    }
    assert "MUTGUARD_REGIONS" not in worker  # no regions given: every enabled one
    assert worker["MUTGUARD_REPORT_STORE"] == outputs["report_store"]
    assert outputs["report_store"] == f"s3:{outputs['report_bucket_name']}/reports"
    assert worker["MUTGUARD_REPORT_LINK_TTL"] == "43200"
    assert "MUTGUARD_REPORT_KMS_KEY" not in worker  # no key: SSE-S3


def test_the_report_bucket_is_private_encrypted_tls_only_and_expires(deployed: Deployment):
    s3, bucket = deployed.client("s3"), deployed.scanner_outputs["report_bucket_name"]
    assert bucket == f"{NAME}-reports-{SCANNER_ACCOUNT}-us-east-1"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == dict.fromkeys(
        ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"),
        True,
    )
    (ownership,) = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    assert ownership == {"ObjectOwnership": "BucketOwnerEnforced"}
    (encryption,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"][
        "Rules"
    ]
    assert encryption["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    (rule,) = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert (rule["Status"], rule["Filter"], rule["Expiration"]) == (
        "Enabled",
        {"Prefix": "reports/"},
        {"Days": 90},
    )
    (deny,) = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "s3:*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_worker_drains_the_scan_queue_one_message_at_a_time(deployed: Deployment):
    outputs = deployed.scanner_outputs
    lambda_ = deployed.client("lambda")
    (mapping,) = [
        m
        for m in lambda_.list_event_source_mappings()["EventSourceMappings"]
        if m["EventSourceArn"] == outputs["queue_arn"]
    ]
    assert mapping["EventSourceArn"] == outputs["queue_arn"]
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionArn"].endswith(f":function:{outputs['worker_function_name']}")
    planned = next(
        change["change"]["after"]
        for change in deployed.scanner_plan["resource_changes"]
        if change["address"] == "module.mutguard.aws_lambda_event_source_mapping.worker"
    )
    # moto keeps no FunctionResponseTypes: the plan says what was sent.
    assert planned["function_response_types"] == ["ReportBatchItemFailures"]
    assert mapping.get("FunctionResponseTypes", ["ReportBatchItemFailures"]) == [
        "ReportBatchItemFailures"
    ]


def test_the_state_table_is_keyed_by_cluster_encrypted_and_recoverable(deployed: Deployment):
    dynamodb = deployed.client("dynamodb")
    table = dynamodb.describe_table(TableName=STATE_TABLE)["Table"]
    assert table["TableArn"] == deployed.scanner_outputs["state_table_arn"]
    assert table["KeySchema"] == [{"AttributeName": "cluster_key", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    backups = dynamodb.describe_continuous_backups(TableName=STATE_TABLE)
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=STATE_TABLE)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("expires_at", "ENABLED")


def test_the_log_groups_exist_before_the_functions_with_retention(deployed: Deployment):
    names = deployed.scanner_outputs["log_group_names"]
    groups = deployed.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    retention = {g["logGroupName"]: g.get("retentionInDays") for g in groups["logGroups"]}
    assert retention == {
        f"/aws/lambda/{NAME}-dispatcher": 30,
        f"/aws/lambda/{NAME}-worker": 30,
    }
    assert set(names.values()) == set(retention)


def test_each_role_trusts_only_its_service_and_holds_its_own_policy(deployed: Deployment):
    iam = deployed.client("iam")
    trusted = {}
    for role in (f"{NAME}-dispatcher", f"{NAME}-worker", f"{NAME}-schedule"):
        document = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        (trust,) = document["Statement"]
        trusted[role] = (trust["Action"], trust["Principal"])
    assert trusted == {
        f"{NAME}-dispatcher": ("sts:AssumeRole", {"Service": "lambda.amazonaws.com"}),
        f"{NAME}-worker": ("sts:AssumeRole", {"Service": "lambda.amazonaws.com"}),
        f"{NAME}-schedule": ("sts:AssumeRole", {"Service": "scheduler.amazonaws.com"}),
    }
    worker = role_policy(iam, f"{NAME}-worker")
    assume = statement(worker, "AssumeMemberRoles")
    assert as_list(assume["Resource"]) == [MEMBER_ROLE]
    assert "Condition" not in assume  # accounts listed one by one need no organization
    assert as_list(statement(worker, "ReadSinkSecrets")["Resource"]) == [
        deployed.sinks["secret_arn"]
    ]
    assert as_list(statement(worker, "KeepAlertState")["Resource"]) == [
        deployed.scanner_outputs["state_table_arn"]
    ]
    schedule = role_policy(iam, f"{NAME}-schedule")
    dispatcher_arn = deployed.function_configuration(f"{NAME}-dispatcher")["FunctionArn"]
    assert as_list(statement(schedule, "InvokeDispatcher")["Resource"]) == [dispatcher_arn]


# --- The member account ------------------------------------------------------------------


def test_the_member_role_reads_eks_and_has_an_access_entry_per_cluster(deployed: Deployment):
    assert deployed.member_outputs["role_arn"] == MEMBER_ROLE
    iam = deployed.client("iam", account=MEMBER_ACCOUNT)
    policy = role_policy(iam, "MutguardReadOnly")
    granted = {action for s in policy["Statement"] for action in as_list(s["Action"])}
    assert granted == {
        "eks:ListClusters",
        "ec2:DescribeRegions",
        "eks:DescribeCluster",
        "eks:ListAccessEntries",
        "eks:ListIdentityProviderConfigs",
        "eks:DescribeAccessEntry",
        "eks:ListAssociatedAccessPolicies",
        "eks:DescribeIdentityProviderConfig",
    }
    assert deployed.recorder.access_entries() == {
        (MEMBER_ACCOUNT, region, name): [MEMBER_ROLE] for region, name in MEMBER_CLUSTERS
    }
    eks = deployed.client("eks", account=MEMBER_ACCOUNT)
    entry = eks.describe_access_entry(clusterName="payments", principalArn=MEMBER_ROLE)
    assert entry["accessEntry"]["kubernetesGroups"] == ["mutguard-readers"]
    assert set(deployed.member_outputs["access_entry_arns"]) == {n for _, n in MEMBER_CLUSTERS}


def trust_allows(trust: dict[str, Any], principal: str, external_id: str | None) -> bool:
    """Whether the trust policy lets `principal` call sts:AssumeRole with `external_id`.

    moto's AssumeRole checks no trust policy (moto/sts/models.py: "the role does not need to
    exist"), so the document moto stored is evaluated here, for the one shape the module
    writes: Allow statements naming AWS principals, with StringEquals conditions.
    """
    context = {"sts:ExternalId": external_id}
    for rule in trust["Statement"]:
        if rule["Effect"] != "Allow" or "sts:AssumeRole" not in as_list(rule["Action"]):
            continue
        if principal not in as_list(rule["Principal"].get("AWS", [])):
            continue
        assert set(rule.get("Condition", {})) <= {"StringEquals"}, rule["Condition"]
        equals = rule.get("Condition", {}).get("StringEquals", {})
        if all(context.get(key) in as_list(values) for key, values in equals.items()):
            return True
    return False


def test_only_the_worker_with_the_external_id_may_assume_the_member_role(deployed: Deployment):
    iam = deployed.client("iam", account=MEMBER_ACCOUNT)
    trust = iam.get_role(RoleName="MutguardReadOnly")["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust_allows(trust, WORKER_ROLE, EXTERNAL_ID)
    assert not trust_allows(trust, WORKER_ROLE, None)
    assert not trust_allows(trust, WORKER_ROLE, "mutguard-guessed")
    dispatcher_role = f"arn:aws:iam::{SCANNER_ACCOUNT}:role/{NAME}-dispatcher"
    assert not trust_allows(trust, dispatcher_role, EXTERNAL_ID)

    # The worker's own policy allows the call, and moto answers it for the member account.
    worker_policy = role_policy(deployed.client("iam"), f"{NAME}-worker")
    assert MEMBER_ROLE in as_list(statement(worker_policy, "AssumeMemberRoles")["Resource"])
    worker = role_session(deployed.session_for(None), WORKER_ROLE, deployed.endpoint)
    member = role_session(worker, MEMBER_ROLE, deployed.endpoint, external_id=EXTERNAL_ID)
    identity = member.client("sts", endpoint_url=deployed.endpoint).get_caller_identity()
    assert identity["Account"] == MEMBER_ACCOUNT
    assert identity["Arn"].startswith(
        f"arn:aws:sts::{MEMBER_ACCOUNT}:assumed-role/MutguardReadOnly/"
    )


# --- The packaged handlers against what Terraform made -----------------------------------


def test_a_scheduled_run_scans_the_member_account_and_publishes_everywhere(
    deployed: Deployment,
):
    run = deployed.scheduled_run()
    assert run.schedule_input == {"action": "dispatch", "publish": True}
    assert run.dispatched["statusCode"] == 200 and run.dispatched["dispatched"] == 2
    bodies = [parse_payload(m["Body"]) for m in run.queued]
    assert sorted((b.targets[0].region or "-") for b in bodies) == ["-", "eu-west-1"]
    assert all(b.action == "scan" and b.publish for b in bodies)
    assert {t.account for b in bodies for t in b.targets} == {MEMBER_ACCOUNT}
    assert {m["MessageAttributes"]["run_id"]["StringValue"] for m in run.queued} == {
        run.dispatched["run_id"]
    }

    assert run.worker_answer == {"batchItemFailures": []}
    assert run.after_worker == []

    # The state table the module made holds a row per cluster of the member account.
    items = deployed.client("dynamodb").scan(TableName=STATE_TABLE)["Items"]
    clusters = {i["cluster_key"]["S"] for i in items if not i["cluster_key"]["S"].startswith("#")}
    assert len(clusters) == len(MEMBER_CLUSTERS)
    assert all(MEMBER_ACCOUNT in key for key in clusters)

    # Each scan message's JSON and HTML report is in the module's bucket, and Slack links to it.
    bucket = deployed.scanner_outputs["report_bucket_name"]
    stored = deployed.client("s3").list_objects_v2(Bucket=bucket, Prefix="reports/")["Contents"]
    names = sorted(o["Key"].rsplit("/", 1)[1] for o in stored)
    assert names == ["report.html", "report.html", "report.json", "report.json"]
    titled = tuple(f"{name} " for _, name in MEMBER_CLUSTERS)  # a cluster's message, by header
    footers = [
        blocks[-1]["elements"][0]["text"]
        for r in deployed.chat.delivered(SLACK_HOOK)
        if (blocks := r.json()["blocks"])[0]["text"]["text"].startswith(titled)
    ]
    assert len(footers) == len(MEMBER_CLUSTERS)
    assert all(f"/{bucket}/reports/" in footer and "|Full report>" in footer for footer in footers)

    # Every sink delivered: Slack (webhook from Secrets Manager), SQS, SNS, SES, Security Hub.
    # The worker finishing the run's last scan also sends the one fleet digest.
    headers = [r.json()["blocks"][0]["text"]["text"] for r in deployed.chat.delivered(SLACK_HOOK)]
    *alerts, digest = headers
    assert sorted(h.split(" ")[0] for h in alerts) == sorted(n for _, n in MEMBER_CLUSTERS)
    assert digest.startswith(f"mutguard fleet digest: {len(MEMBER_CLUSTERS)} clusters")
    sqs = deployed.client("sqs")
    queued = [json.loads(m["Body"]) for m in receive_all(sqs, deployed.sinks["local_queue_url"])]
    reports = [body for body in queued if body.get("type") != "fleet_digest"]
    assert [body["run_id"] for body in queued if body.get("type") == "fleet_digest"] == [
        run.dispatched["run_id"]
    ]
    assert sorted(c["name"] for r in reports for c in r["clusters"]) == sorted(
        n for _, n in MEMBER_CLUSTERS
    )
    assert {c["account"] for r in reports for c in r["clusters"]} == {MEMBER_ACCOUNT}
    assert receive_all(sqs, deployed.sinks["inbox_url"])
    sent = [c for c in deployed.recorder.calls() if c.operation == "SendRawEmail"]
    assert sent and all(c.params["Source"] == SES_SENDER and c.status == 200 for c in sent)
    imported = [c for c in deployed.recorder.calls() if c.operation == "BatchImportFindings"]
    assert imported and all(c.status == 200 for c in imported)
    hub = deployed.client("securityhub").get_findings(MaxResults=100)["Findings"]
    assert hub and {f["ProductFields"]["mutguard/account"] for f in hub} == {MEMBER_ACCOUNT}

    # The worker read the member account through the module's role, with the external id.
    assumed = [c for c in deployed.recorder.calls() if c.operation == "AssumeRole" and c.role_arn]
    assert {(c.role_arn, c.params["RoleArn"], c.params.get("ExternalId")) for c in assumed} == {
        (WORKER_ROLE, MEMBER_ROLE, EXTERNAL_ID)
    }


# --- Destroy -----------------------------------------------------------------------------


def module_leftovers(deployed: Deployment) -> dict[str, list[str]]:
    """What still exists of anything either module creates, by kind."""
    sqs, lambda_, iam = (deployed.client(s) for s in ("sqs", "lambda", "iam"))
    left = {
        "queues": [u for u in sqs.list_queues().get("QueueUrls", []) if f"/{NAME}-" in u],
        "functions": [f["FunctionName"] for f in lambda_.list_functions()["Functions"]],
        "event source mappings": [
            m["UUID"] for m in lambda_.list_event_source_mappings()["EventSourceMappings"]
        ],
        "roles": [
            r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith(NAME)
        ],
        "tables": deployed.client("dynamodb").list_tables()["TableNames"],
        "log groups": [
            g["logGroupName"] for g in deployed.client("logs").describe_log_groups()["logGroups"]
        ],
        "schedules": [
            s["Name"] for s in deployed.client("scheduler").list_schedules()["Schedules"]
        ],
        "member roles": [
            r["RoleName"]
            for r in deployed.client("iam", account=MEMBER_ACCOUNT).list_roles()["Roles"]
            if r["RoleName"] == "MutguardReadOnly"
        ],
        "access entries": [str(key) for key in deployed.recorder.access_entries()],
        "buckets": [
            b["Name"]
            for b in deployed.client("s3").list_buckets()["Buckets"]
            if b["Name"].startswith(f"{NAME}-reports-")
        ],
    }
    return {kind: names for kind, names in left.items() if names}


def test_destroy_removes_everything_the_modules_created(aws_deployment: Deployment):
    deployed = aws_deployment.ensure_applied()
    assert set(module_leftovers(deployed)) == {
        "queues",
        "functions",
        "event source mappings",
        "roles",
        "tables",
        "log groups",
        "schedules",
        "member roles",
        "access entries",
        "buckets",
    }
    # The module never deletes stored reports (no force_destroy): their owner empties the bucket.
    s3, bucket = deployed.client("s3"), deployed.scanner_outputs["report_bucket_name"]
    for stored in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=stored["Key"])
    deployed.destroy()
    assert module_leftovers(deployed) == {}
    # What the sinks deliver to belongs to their owner and stays.
    assert deployed.client("sqs").get_queue_url(QueueName=FINDINGS)["QueueUrl"]
