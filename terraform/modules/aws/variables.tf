variable "name" {
  type        = string
  description = "Prefix of every resource name (functions, queues, roles, log groups, schedule)."
  default     = "mutguard"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$", var.name))
    error_message = "name must be 1-40 letters, digits, '-' or '_', starting with a letter or digit."
  }
}

variable "lambda_zip_path" {
  type        = string
  description = "Path to dist/mutguard-aws-lambda.zip built by `make package` (both functions run from it)."

  validation {
    condition     = endswith(var.lambda_zip_path, ".zip")
    error_message = "lambda_zip_path must point to the .zip file `make package` writes."
  }
}

variable "schedule_expression" {
  type        = string
  description = "EventBridge Scheduler expression of the recurring dispatch, e.g. cron(0 6 * * ? *) or rate(12 hours)."
  default     = "cron(0 6 * * ? *)"

  validation {
    condition     = can(regex("^(cron|rate)\\(.+\\)$", var.schedule_expression))
    error_message = "schedule_expression must be a cron(...) or rate(...) expression."
  }
}

variable "schedule_timezone" {
  type        = string
  description = "IANA time zone the schedule expression is evaluated in, e.g. Europe/Berlin."
  default     = "UTC"
}

variable "schedule_enabled" {
  type        = bool
  description = "Whether the schedule fires; false keeps everything deployed for manual invocations only."
  default     = true
}

variable "targets" {
  type = list(object({
    provider = string
    account  = string
    region   = optional(string)
    cluster  = optional(string)
  }))
  description = "What a dispatch scans when its payload names no targets (MUTGUARD_TARGETS). A target without region covers the regions in `regions` (else every enabled region); without cluster, every cluster there."
  default     = []

  validation {
    condition     = alltrue([for t in var.targets : t.provider == "eks" && can(regex("^[0-9]{12}$", t.account))])
    error_message = "Each target needs provider \"eks\" and a 12-digit AWS account id."
  }
}

variable "organizations_enabled" {
  type        = bool
  description = "Let the dispatcher list the ACTIVE accounts of the AWS Organization (MUTGUARD_AWS_ORGANIZATIONS); the module must then be deployed in the management account or a delegated administrator account."
  default     = false
}

variable "regions" {
  type        = list(string)
  description = "Regions scanned for targets that name none (MUTGUARD_REGIONS); empty means every enabled region."
  default     = []

  validation {
    condition     = alltrue([for r in var.regions : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", r))])
    error_message = "regions must be AWS region names such as eu-west-1."
  }
}

variable "member_role_name" {
  type        = string
  description = "Name of the read-only role (modules/aws-member) the worker assumes in every scanned account, this one included; it becomes MUTGUARD_ROLE_ARN with {account} in it."
  default     = "MutguardReadOnly"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.member_role_name))
    error_message = "member_role_name must be a valid IAM role name (1-64 characters)."
  }
}

variable "member_role_path" {
  type        = string
  description = "IAM path of the member role, as given to modules/aws-member."
  default     = "/"

  validation {
    condition     = can(regex("^/([A-Za-z0-9+=,.@_-]+/)*$", var.member_role_path))
    error_message = "member_role_path must start and end with '/'."
  }
}

variable "member_account_ids" {
  type        = list(string)
  description = "Accounts whose member role the worker may assume; empty allows the role name in any account of organization_id (which must then be set, e.g. with organizations_enabled)."
  default     = []

  validation {
    condition     = alltrue([for a in var.member_account_ids : can(regex("^[0-9]{12}$", a))])
    error_message = "member_account_ids must be 12-digit AWS account ids."
  }
}

variable "organization_id" {
  type        = string
  description = "AWS Organizations id (o-...): with member_account_ids empty, the worker may assume the member role in any account of this organization only (aws:ResourceOrgID). One of the two is required."
  default     = null

  validation {
    condition     = var.organization_id == null || can(regex("^o-[a-z0-9]{10,32}$", var.organization_id))
    error_message = "organization_id must be an AWS Organizations id such as o-a1b2c3d4e5."
  }
}

variable "member_external_id" {
  type        = string
  description = "External id the member roles' trust policy requires (MUTGUARD_EXTERNAL_ID); null when they require none."
  default     = null

  validation {
    condition     = var.member_external_id == null || try(length(var.member_external_id) >= 2 && length(var.member_external_id) <= 1224 && can(regex("^[A-Za-z0-9+=,.@:/_-]+$", var.member_external_id)), false)
    error_message = "member_external_id must be 2-1224 characters of letters, digits and +=,.@:/-_."
  }
}

variable "sinks" {
  type        = list(string)
  description = "Sinks a publishing run uses when its payload names none (MUTGUARD_SINKS), e.g. [\"slack\", \"sqs\"]."
  default     = []
}

variable "sinks_config" {
  type        = string
  description = "YAML text of the `sinks:` list (MUTGUARD_SINKS_CONFIG). Secrets in it are references such as aws-secretsmanager:NAME, never values."
  default     = null

  validation {
    condition     = var.sinks_config == null || can(yamldecode(var.sinks_config))
    error_message = "sinks_config must be valid YAML."
  }
}

variable "secret_arns" {
  type        = list(string)
  description = "Secrets Manager secrets the worker may read (secretsmanager:GetSecretValue): the ones sinks_config references."
  default     = []

  validation {
    condition     = alltrue([for a in var.secret_arns : can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", a))])
    error_message = "secret_arns must be Secrets Manager secret ARNs."
  }
}

variable "sqs_sink_queue_arns" {
  type        = list(string)
  description = "Queues the sqs sink (and a sink's dead_letter_queue_url) sends reports to (sqs:SendMessage)."
  default     = []

  validation {
    condition     = alltrue([for a in var.sqs_sink_queue_arns : can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", a))])
    error_message = "sqs_sink_queue_arns must be SQS queue ARNs."
  }
}

variable "sns_sink_topic_arns" {
  type        = list(string)
  description = "Topics the sns sink publishes to (sns:Publish)."
  default     = []

  validation {
    condition     = alltrue([for a in var.sns_sink_topic_arns : can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", a))])
    error_message = "sns_sink_topic_arns must be SNS topic ARNs."
  }
}

variable "ses_identity_arns" {
  type        = list(string)
  description = "Verified SES identities the ses sink sends from (ses:SendRawEmail)."
  default     = []

  validation {
    condition     = alltrue([for a in var.ses_identity_arns : can(regex("^arn:aws[a-z-]*:ses:[a-z0-9-]+:[0-9]{12}:identity/.+$", a))])
    error_message = "ses_identity_arns must be SES identity ARNs (arn:aws:ses:REGION:ACCOUNT:identity/NAME)."
  }
}

variable "securityhub_product_arns" {
  type        = list(string)
  description = "Security Hub products the securityhub sink imports findings into (securityhub:BatchImportFindings), e.g. this account's custom integration arn:aws:securityhub:REGION:ACCOUNT:product/ACCOUNT/default."
  default     = []

  validation {
    condition     = alltrue([for a in var.securityhub_product_arns : can(regex("^arn:aws[a-z-]*:securityhub:[a-z0-9-]+:[0-9]{12}:product/.+$", a))])
    error_message = "securityhub_product_arns must be Security Hub product ARNs (arn:aws:securityhub:REGION:ACCOUNT:product/...)."
  }
}

variable "decrypt_kms_key_arns" {
  type        = list(string)
  description = "Customer-managed KMS keys of the listed secrets, sink queues and topics (kms:Decrypt and kms:GenerateDataKey for the worker)."
  default     = []

  validation {
    condition     = alltrue([for a in var.decrypt_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", a))])
    error_message = "decrypt_kms_key_arns must be KMS key ARNs."
  }
}

variable "state_table_name" {
  type        = string
  description = "DynamoDB table that remembers what was alerted (MUTGUARD_STATE_STORE dynamodb:TABLE); null keeps no state, so every publishing run sends a digest."
  default     = "mutguard-state"

  validation {
    condition     = var.state_table_name == null || can(regex("^[A-Za-z0-9_.-]{3,255}$", var.state_table_name))
    error_message = "state_table_name must be 3-255 letters, digits, '_', '-' or '.'."
  }
}

variable "create_state_table" {
  type        = bool
  description = "Create the state table (partition key cluster_key, on-demand, encrypted, point-in-time recovery); false uses an existing table of that name in this account and region."
  default     = true
}

variable "state_table_deletion_protection" {
  type        = bool
  description = "Protect the created state table from deletion."
  default     = true
}

variable "kms_key_arn" {
  type        = string
  description = "Customer-managed KMS key for the queues, log groups, state table and Lambda environment; null uses AWS managed encryption. Its key policy must let SQS, CloudWatch Logs and DynamoDB use it."
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN."
  }
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the functions' CloudWatch log groups."
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "log_retention_in_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ... 3653)."
  }
}

variable "log_level" {
  type        = string
  description = "Log level of the functions (POWERTOOLS_LOG_LEVEL)."
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "tracing_enabled" {
  type        = bool
  description = "Trace both functions with AWS X-Ray (Active tracing)."
  default     = true
}

variable "dispatcher_reserved_concurrency" {
  type        = number
  description = "Reserved concurrent executions of the dispatcher; null leaves it on the account's unreserved pool."
  default     = null

  validation {
    condition     = var.dispatcher_reserved_concurrency == null || try(var.dispatcher_reserved_concurrency >= 0, false)
    error_message = "dispatcher_reserved_concurrency must be null or at least 0."
  }
}

variable "worker_reserved_concurrency" {
  type        = number
  description = "Reserved concurrent executions of the worker; null leaves it on the account's unreserved pool (worker_max_concurrency still caps it)."
  default     = null

  validation {
    condition     = var.worker_reserved_concurrency == null || try(var.worker_reserved_concurrency >= 0, false)
    error_message = "worker_reserved_concurrency must be null or at least 0."
  }
}

variable "worker_max_concurrency" {
  type        = number
  description = "Most worker invocations the SQS event source runs at once (account-regions scanned in parallel)."
  default     = 5

  validation {
    condition     = var.worker_max_concurrency >= 2 && var.worker_max_concurrency <= 1000
    error_message = "worker_max_concurrency must be between 2 and 1000 (the event source mapping's limits)."
  }
}

variable "worker_timeout" {
  type        = number
  description = "Seconds one worker invocation (one account-region) may run; the queue's visibility timeout is six times this."
  default     = 600

  validation {
    condition     = var.worker_timeout >= 30 && var.worker_timeout <= 900
    error_message = "worker_timeout must be between 30 and 900 seconds."
  }
}

variable "worker_memory_size" {
  type        = number
  description = "Memory (MB) of the worker; CPU scales with it."
  default     = 1024

  validation {
    condition     = var.worker_memory_size >= 128 && var.worker_memory_size <= 10240
    error_message = "worker_memory_size must be between 128 and 10240 MB."
  }
}

variable "max_receive_count" {
  type        = number
  description = "Deliveries of a scan message before it moves to the dead-letter queue."
  default     = 3

  validation {
    condition     = var.max_receive_count >= 1 && var.max_receive_count <= 1000
    error_message = "max_receive_count must be between 1 and 1000."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}

variable "report_bucket_enabled" {
  type        = bool
  description = "Keep each published scan's JSON and HTML report in a private, encrypted S3 bucket the module creates (MUTGUARD_REPORT_STORE); alerts then link to the HTML report."
  default     = false
}

variable "report_bucket_name" {
  type        = string
  description = "Name of the report bucket; null names it NAME-reports-ACCOUNT-REGION."
  default     = null

  validation {
    condition     = var.report_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.report_bucket_name))
    error_message = "report_bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, '.' and '-')."
  }
}

variable "report_prefix" {
  type        = string
  description = "Key prefix of the reports in the bucket; the worker may write under it only."
  default     = "reports"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$", var.report_prefix))
    error_message = "report_prefix must be one or more path segments of letters, digits, '_', '.' or '-', without leading or trailing '/'."
  }
}

variable "report_retention_days" {
  type        = number
  description = "Days a stored report is kept before the bucket's lifecycle rule deletes it."
  default     = 90

  validation {
    condition     = var.report_retention_days >= 1 && floor(var.report_retention_days) == var.report_retention_days
    error_message = "report_retention_days must be a whole number of days, at least 1."
  }
}

variable "report_link_ttl" {
  type        = string
  description = "How alerts link to a stored report (MUTGUARD_REPORT_LINK_TTL): seconds a presigned URL lasts (60-604800; a URL signed with the function's temporary credentials ends with them, within hours), or \"console\" for an S3 console link."
  default     = "43200"

  validation {
    condition     = var.report_link_ttl == "console" || try(tonumber(var.report_link_ttl) >= 60 && tonumber(var.report_link_ttl) <= 604800 && can(regex("^[0-9]+$", var.report_link_ttl)), false)
    error_message = "report_link_ttl must be \"console\" or a number of seconds from 60 to 604800 (7 days)."
  }
}
