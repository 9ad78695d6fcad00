# mutguard on AWS: EventBridge Scheduler -> dispatcher Lambda -> SQS (one message per
# account-region) -> worker Lambda, which assumes the read-only member role in each account.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  dispatcher_name = "${var.name}-dispatcher"
  worker_name     = "${var.name}-worker"

  # The worker holds no EKS permission of its own: functions/runtime.py reads every account,
  # this one included, through MUTGUARD_ROLE_ARN (the role modules/aws-member creates).
  member_role_arn_template = "arn:${local.partition}:iam::{account}:role${var.member_role_path}${var.member_role_name}"
  # Listed accounts are named one by one; without a list, the role name in any account of the
  # organization (aws:ResourceOrgID), never in an account outside it.
  member_role_arns = (
    length(var.member_account_ids) > 0
    ? [for account in var.member_account_ids : replace(local.member_role_arn_template, "{account}", account)]
    : [replace(local.member_role_arn_template, "{account}", "*")]
  )
  member_role_org_ids = length(var.member_account_ids) > 0 ? [] : compact([var.organization_id])

  # `id` is the region's name in provider 5 and 6 alike; `name` is deprecated in 6, and
  # `region` does not exist in 5.
  region = data.aws_region.current.id

  scan_queue_name = "${var.name}-scan"
  scan_queue_arn  = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.scan_queue_name}"

  report_bucket_name = coalesce(var.report_bucket_name, "${var.name}-reports-${local.account_id}-${local.region}")
  report_store       = var.report_bucket_enabled ? "s3:${local.report_bucket_name}/${var.report_prefix}" : null

  state_table_arn = (
    var.state_table_name == null ? null
    : var.create_state_table ? aws_dynamodb_table.state[0].arn
    : "arn:${local.partition}:dynamodb:${local.region}:${local.account_id}:table/${var.state_table_name}"
  )

  # Null values are dropped below: Lambda takes no null environment variable.
  environment = {
    MUTGUARD_TARGETS           = length(var.targets) > 0 ? jsonencode([for t in var.targets : { for k, v in t : k => v if v != null }]) : null
    MUTGUARD_AWS_ORGANIZATIONS = var.organizations_enabled ? "true" : null
    MUTGUARD_REGIONS           = length(var.regions) > 0 ? join(",", var.regions) : null
    MUTGUARD_ROLE_ARN          = local.member_role_arn_template
    MUTGUARD_EXTERNAL_ID       = var.member_external_id
    MUTGUARD_QUEUE_URL         = aws_sqs_queue.scan.url
    MUTGUARD_SINKS             = length(var.sinks) > 0 ? join(",", var.sinks) : null
    MUTGUARD_SINKS_CONFIG      = var.sinks_config
    MUTGUARD_STATE_STORE       = var.state_table_name == null ? null : "dynamodb:${var.state_table_name}"
    MUTGUARD_REPORT_STORE      = local.report_store
    MUTGUARD_REPORT_LINK_TTL   = var.report_bucket_enabled ? var.report_link_ttl : null
    MUTGUARD_REPORT_KMS_KEY    = var.report_bucket_enabled ? var.kms_key_arn : null
    POWERTOOLS_SERVICE_NAME    = "mutguard"
    POWERTOOLS_LOG_LEVEL       = var.log_level
  }
  lambda_environment = { for k, v in local.environment : k => v if v != null }

  # The module's own key; the worker also decrypts secrets and sends to sinks under theirs.
  module_kms_keys = var.kms_key_arn == null ? [] : [var.kms_key_arn]
  worker_kms_keys = distinct(concat(local.module_kms_keys, var.decrypt_kms_key_arns))
}

# ---------------------------------------------------------------------------------------------
# Queues: the scan queue the dispatcher fills and the worker drains, its dead-letter queue, and
# the dead-letter queue of dispatches that failed (the schedule's and the dispatcher's).

resource "aws_sqs_queue" "dead_letter" {
  name                              = "${var.name}-scan-dlq"
  message_retention_seconds         = 1209600 # 14 days, the most SQS keeps, to inspect or redrive
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  # Only the scan queue may move messages here; its ARN is spelled out, as the scan queue
  # itself needs this queue's ARN first.
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.scan_queue_arn]
  })
  tags = var.tags
}

resource "aws_sqs_queue" "scan" {
  name = local.scan_queue_name
  # AWS asks for at least six times the function timeout on a Lambda-drained queue.
  visibility_timeout_seconds        = min(43200, 6 * var.worker_timeout)
  message_retention_seconds         = 345600 # 4 days: a scan older than that is stale anyway
  receive_wait_time_seconds         = 20
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue" "dispatch_dead_letter" {
  name                              = "${var.name}-dispatch-dlq"
  message_retention_seconds         = 1209600 # 14 days, the most SQS keeps, to inspect
  sqs_managed_sse_enabled           = var.kms_key_arn == null ? true : null
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = var.kms_key_arn == null ? null : 300
  tags                              = var.tags
}

# ---------------------------------------------------------------------------------------------
# Optional state table: one item per cluster under the String partition key cluster_key.

resource "aws_dynamodb_table" "state" {
  count = var.create_state_table && var.state_table_name != null ? 1 : 0

  name                        = var.state_table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "cluster_key"
  deletion_protection_enabled = var.state_table_deletion_protection

  attribute {
    name = "cluster_key"
    type = "S"
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = var.kms_key_arn
  }

  point_in_time_recovery {
    enabled = true
  }

  # Alert claims (mutguard/publish/stores/dynamodb.py) carry expires_at; DynamoDB drops them after it.
  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  tags = var.tags
}

# ---------------------------------------------------------------------------------------------
# Optional report bucket: each published scan's JSON and HTML report (mutguard/publish/
# reports/s3.py), private, encrypted, TLS only, deleted after report_retention_days.

resource "aws_s3_bucket" "reports" {
  #checkov:skip=CKV_AWS_18:Access logging needs a log bucket this module does not own; CloudTrail data events can record reads instead.
  #checkov:skip=CKV_AWS_144:Reports are kept for report_retention_days and can be rebuilt by the next scan; cross-region replication is the operator's choice.
  #checkov:skip=CKV2_AWS_62:Nothing consumes report events; the alerts carry the links.
  #checkov:skip=CKV_AWS_21:Each report is written once under its own key and never replaced, so versions would only keep what the lifecycle rule deletes.
  count = var.report_bucket_enabled ? 1 : 0

  bucket = local.report_bucket_name
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "reports" {
  count = var.report_bucket_enabled ? 1 : 0

  bucket                  = aws_s3_bucket.reports[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "reports" {
  count = var.report_bucket_enabled ? 1 : 0

  bucket = aws_s3_bucket.reports[0].id
  rule {
    object_ownership = "BucketOwnerEnforced" # ACLs off: the policy alone decides who reads
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "reports" {
  #checkov:skip=CKV_AWS_145:SSE-KMS with kms_key_arn when one is given; without one, SSE-S3 (AES256), as the queues use AWS managed encryption then.
  count = var.report_bucket_enabled ? 1 : 0

  bucket = aws_s3_bucket.reports[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "reports" {
  count = var.report_bucket_enabled ? 1 : 0

  bucket = aws_s3_bucket.reports[0].id
  rule {
    id     = "expire-reports"
    status = "Enabled"
    filter {
      prefix = "${var.report_prefix}/"
    }
    expiration {
      days = var.report_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "reports_tls_only" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = var.report_bucket_enabled ? [aws_s3_bucket.reports[0].arn, "${aws_s3_bucket.reports[0].arn}/*"] : []

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "reports" {
  count = var.report_bucket_enabled ? 1 : 0

  bucket = aws_s3_bucket.reports[0].id
  policy = data.aws_iam_policy_document.reports_tls_only.json

  depends_on = [aws_s3_bucket_public_access_block.reports]
}

# ---------------------------------------------------------------------------------------------
# Log groups, created before the functions so Lambda never creates them without retention.

resource "aws_cloudwatch_log_group" "dispatcher" {
  name              = "/aws/lambda/${local.dispatcher_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_group" "worker" {
  name              = "/aws/lambda/${local.worker_name}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

# ---------------------------------------------------------------------------------------------
# IAM: one role per function and one for the schedule, each with only what it calls.

data "aws_iam_policy_document" "lambda_trust" {
  statement {
    sid     = "LambdaService"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "dispatcher" {
  name                 = local.dispatcher_name
  description          = "mutguard dispatcher: fills the scan queue"
  assume_role_policy   = data.aws_iam_policy_document.lambda_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "dispatcher" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.dispatcher.arn}:*"]
  }

  statement {
    sid       = "FillScanQueue"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.scan.arn]
  }

  statement {
    sid       = "DeadLetterFailedDispatches"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dispatch_dead_letter.arn]
  }

  dynamic "statement" {
    for_each = var.organizations_enabled ? [1] : []
    content {
      sid       = "ListOrganizationAccounts"
      actions   = ["organizations:ListAccounts"]
      resources = ["*"] # ListAccounts supports no resource-level permission
    }
  }

  dynamic "statement" {
    for_each = local.state_table_arn == null ? [] : [1]
    content {
      # A publishing run is recorded (a conditional put) before its scans are queued, so the
      # worker finishing the last one sends the fleet digest.
      sid       = "RecordScheduledRuns"
      actions   = ["dynamodb:PutItem"]
      resources = [local.state_table_arn]
    }
  }

  dynamic "statement" {
    for_each = var.tracing_enabled ? [1] : []
    content {
      sid       = "SendTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"] # X-Ray supports no resource-level permission for these
    }
  }

  dynamic "statement" {
    for_each = length(local.module_kms_keys) > 0 ? [1] : []
    content {
      sid       = "UseModuleKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = local.module_kms_keys
    }
  }
}

resource "aws_iam_role_policy" "dispatcher" {
  name   = "mutguard-dispatcher"
  role   = aws_iam_role.dispatcher.id
  policy = data.aws_iam_policy_document.dispatcher.json
}

resource "aws_iam_role" "worker" {
  name                 = local.worker_name
  description          = "mutguard worker: assumes the read-only member roles and publishes"
  assume_role_policy   = data.aws_iam_policy_document.lambda_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "worker" {
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.worker.arn}:*"]
  }

  statement {
    sid       = "DrainScanQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.scan.arn]
  }

  statement {
    sid       = "AssumeMemberRoles"
    actions   = ["sts:AssumeRole"]
    resources = local.member_role_arns

    dynamic "condition" {
      for_each = local.member_role_org_ids
      content {
        test     = "StringEquals"
        variable = "aws:ResourceOrgID"
        values   = [condition.value]
      }
    }
  }

  dynamic "statement" {
    for_each = var.tracing_enabled ? [1] : []
    content {
      sid       = "SendTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"] # X-Ray supports no resource-level permission for these
    }
  }

  dynamic "statement" {
    for_each = length(var.secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadSinkSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = var.secret_arns
    }
  }

  dynamic "statement" {
    for_each = local.state_table_arn == null ? [] : [1]
    content {
      # PutItem: claiming an alert is a conditional put (releasing deletes through BatchWriteItem).
      # UpdateItem: a finished part adds its number to its run's set of finished parts.
      sid = "KeepAlertState"
      actions = [
        "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"
      ]
      resources = [local.state_table_arn]
    }
  }

  dynamic "statement" {
    for_each = var.report_bucket_enabled ? [1] : []
    content {
      sid       = "StoreReports"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.reports[0].arn}/${var.report_prefix}/*"]
    }
  }

  dynamic "statement" {
    # A presigned link reads with the signer's permission when someone opens it.
    for_each = var.report_bucket_enabled && var.report_link_ttl != "console" ? [1] : []
    content {
      sid       = "ReadReportsThroughLinks"
      actions   = ["s3:GetObject"]
      resources = ["${aws_s3_bucket.reports[0].arn}/${var.report_prefix}/*"]
    }
  }

  dynamic "statement" {
    for_each = length(var.sqs_sink_queue_arns) > 0 ? [1] : []
    content {
      sid       = "PublishToSinkQueues"
      actions   = ["sqs:SendMessage"]
      resources = var.sqs_sink_queue_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.sns_sink_topic_arns) > 0 ? [1] : []
    content {
      sid       = "PublishToSinkTopics"
      actions   = ["sns:Publish"]
      resources = var.sns_sink_topic_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.ses_identity_arns) > 0 ? [1] : []
    content {
      sid       = "SendSinkEmail"
      actions   = ["ses:SendRawEmail"]
      resources = var.ses_identity_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.securityhub_product_arns) > 0 ? [1] : []
    content {
      sid       = "ImportSecurityHubFindings"
      actions   = ["securityhub:BatchImportFindings"]
      resources = var.securityhub_product_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.worker_kms_keys) > 0 ? [1] : []
    content {
      sid       = "UseKeys"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = local.worker_kms_keys
    }
  }
}

resource "aws_iam_role_policy" "worker" {
  name   = "mutguard-worker"
  role   = aws_iam_role.worker.id
  policy = data.aws_iam_policy_document.worker.json

  lifecycle {
    precondition {
      condition     = length(var.member_account_ids) > 0 || var.organization_id != null
      error_message = "Set member_account_ids (the accounts to scan) or organization_id (any account of the organization): the worker must never assume the member role outside them."
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Functions: one package, two handlers (/tmp/brief/functions.md).

resource "aws_lambda_function" "dispatcher" {
  #checkov:skip=CKV_AWS_117:Calls only public AWS APIs (SQS, Organizations); no VPC resource to reach.
  #checkov:skip=CKV_AWS_272:The package is built by `make package` and deployed from a local path; code signing needs a signing profile this module does not own.
  function_name    = local.dispatcher_name
  description      = "mutguard: fans a dispatch out to the scan queue, one message per account and region"
  role             = aws_iam_role.dispatcher.arn
  handler          = "mutguard.functions.aws_lambda.dispatcher.handler"
  runtime          = "python3.12"
  architectures    = ["x86_64"] # the package's compiled wheels are built for x86_64
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = 256
  timeout          = 60

  reserved_concurrent_executions = var.dispatcher_reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.lambda_environment
  }

  # The schedule invokes it asynchronously: a dispatch that still fails after Lambda's retries
  # lands here instead of being dropped.
  dead_letter_config {
    target_arn = aws_sqs_queue.dispatch_dead_letter.arn
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.dispatcher, aws_iam_role_policy.dispatcher]
}

resource "aws_lambda_function" "worker" {
  #checkov:skip=CKV_AWS_116:Invoked synchronously by the SQS event source mapping; failed messages reach the scan queue's dead-letter queue through its redrive policy.
  #checkov:skip=CKV_AWS_117:Reads EKS through public AWS APIs and cluster endpoints; clusters with only a private endpoint are reported UNKNOWN inside until VPC placement is supported.
  #checkov:skip=CKV_AWS_272:The package is built by `make package` and deployed from a local path; code signing needs a signing profile this module does not own.
  function_name    = local.worker_name
  description      = "mutguard: scans one account-region per queue message and publishes what changed"
  role             = aws_iam_role.worker.arn
  handler          = "mutguard.functions.aws_lambda.worker.handler"
  runtime          = "python3.12"
  architectures    = ["x86_64"] # the package's compiled wheels are built for x86_64
  filename         = var.lambda_zip_path
  source_code_hash = filebase64sha256(var.lambda_zip_path)
  memory_size      = var.worker_memory_size
  timeout          = var.worker_timeout

  reserved_concurrent_executions = var.worker_reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = local.lambda_environment
  }

  tracing_config {
    mode = var.tracing_enabled ? "Active" : "PassThrough"
  }

  tags = var.tags

  depends_on = [aws_cloudwatch_log_group.worker, aws_iam_role_policy.worker]
}

resource "aws_lambda_event_source_mapping" "worker" {
  event_source_arn = aws_sqs_queue.scan.arn
  function_name    = aws_lambda_function.worker.arn
  # One account-region per message, and a scan can take minutes: one message per invocation.
  batch_size              = 1
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = var.worker_max_concurrency
  }
}

# ---------------------------------------------------------------------------------------------
# Schedule: EventBridge Scheduler invokes the dispatcher with {"action": "dispatch", "publish": true}.

data "aws_iam_policy_document" "scheduler_trust" {
  statement {
    sid     = "SchedulerService"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name                 = "${var.name}-schedule"
  description          = "mutguard schedule: invokes the dispatcher"
  assume_role_policy   = data.aws_iam_policy_document.scheduler_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeDispatcher"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.dispatcher.arn]
  }

  statement {
    sid       = "DeadLetterFailedInvocations"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dispatch_dead_letter.arn]
  }

  dynamic "statement" {
    for_each = length(local.module_kms_keys) > 0 ? [1] : []
    content {
      sid       = "UseModuleKey"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = local.module_kms_keys
    }
  }
}

resource "aws_iam_role_policy" "scheduler" {
  name   = "mutguard-schedule"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler.json
}

resource "aws_scheduler_schedule" "dispatch" {
  #checkov:skip=CKV_AWS_297:The schedule holds only the constant input {"action": "dispatch", "publish": true}; an AWS owned key encrypts it.
  name                         = "${var.name}-dispatch"
  description                  = "mutguard: dispatch a scan of the configured targets"
  schedule_expression          = var.schedule_expression
  schedule_expression_timezone = var.schedule_timezone
  state                        = var.schedule_enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.dispatcher.arn
    role_arn = aws_iam_role.scheduler.arn
    input    = jsonencode({ action = "dispatch", publish = true })

    dead_letter_config {
      arn = aws_sqs_queue.dispatch_dead_letter.arn
    }

    retry_policy {
      maximum_retry_attempts       = 3
      maximum_event_age_in_seconds = 3600
    }
  }
}
