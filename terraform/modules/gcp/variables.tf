variable "project_id" {
  type        = string
  description = "Project the functions, topic, buckets and service accounts live in."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id."
  }
}

variable "region" {
  type        = string
  description = "Region of the functions, the schedule and the buckets, e.g. europe-west1."

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "name" {
  type        = string
  description = "Prefix of every resource name; service accounts are NAME-scanner and NAME-trigger."
  default     = "mutguard"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,21}$", var.name))
    error_message = "name must be 5-22 lowercase letters, digits or '-', starting with a letter (service account ids are at most 30 characters)."
  }
}

variable "source_zip_path" {
  type        = string
  description = "Path to dist/mutguard-gcp-function.zip built by `make package` (main.py at its root, entry points on_message and audit)."

  validation {
    condition     = endswith(var.source_zip_path, ".zip")
    error_message = "source_zip_path must point to the .zip file `make package` writes."
  }
}

variable "schedule" {
  type        = string
  description = "Cron schedule (unix-cron, five fields) of the recurring dispatch."
  default     = "0 6 * * *"

  validation {
    condition     = length(split(" ", trimspace(var.schedule))) == 5
    error_message = "schedule must be a five-field unix-cron expression, e.g. \"0 6 * * *\"."
  }
}

variable "time_zone" {
  type        = string
  description = "IANA time zone the schedule is evaluated in, e.g. Europe/Berlin."
  default     = "Etc/UTC"
}

variable "targets" {
  type = list(object({
    provider = string
    account  = string
    region   = optional(string)
    cluster  = optional(string)
  }))
  description = "What a dispatch scans when its payload names no targets (MUTGUARD_TARGETS): GKE projects, optionally one location and one cluster. Their projects are added to scan_project_ids."
  default     = []

  validation {
    condition     = alltrue([for t in var.targets : t.provider == "gke" && can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", t.account))])
    error_message = "Each target needs provider \"gke\" and a project id as account."
  }
}

variable "scan_project_ids" {
  type        = list(string)
  description = "Projects the scanner may read clusters of (roles/container.clusterViewer), besides the targets' projects."
  default     = []

  validation {
    condition     = alltrue([for p in var.scan_project_ids : can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", p))])
    error_message = "scan_project_ids must be project ids."
  }
}

variable "secret_ids" {
  type        = list(string)
  description = "Secret Manager secrets the scanner may read (roles/secretmanager.secretAccessor on each), as projects/PROJECT/secrets/NAME: the ones sinks_config references."
  default     = []

  validation {
    condition     = alltrue([for s in var.secret_ids : can(regex("^projects/[^/]+/secrets/[^/]+$", s))])
    error_message = "secret_ids must look like projects/PROJECT/secrets/NAME."
  }
}

variable "sink_topic_ids" {
  type        = list(string)
  description = "Pub/Sub topics the pubsub sink publishes reports to (roles/pubsub.publisher on each), as projects/PROJECT/topics/NAME."
  default     = []

  validation {
    condition     = alltrue([for t in var.sink_topic_ids : can(regex("^projects/[^/]+/topics/[^/]+$", t))])
    error_message = "sink_topic_ids must look like projects/PROJECT/topics/NAME."
  }
}

variable "scc_organization_id" {
  type        = string
  description = "Organization whose Security Command Center the scc sink writes findings to: the scanner gets roles/securitycenter.findingsEditor there. Null: no scc sink."
  default     = null

  validation {
    condition     = var.scc_organization_id == null || can(regex("^[0-9]+$", var.scc_organization_id))
    error_message = "scc_organization_id must be the numeric organization id."
  }
}

variable "sinks" {
  type        = list(string)
  description = "Sinks a publishing run uses when its payload names none (MUTGUARD_SINKS), e.g. [\"slack\", \"pubsub\"]."
  default     = []
}

variable "sinks_config" {
  type        = string
  description = "YAML text of the `sinks:` list (MUTGUARD_SINKS_CONFIG). Secrets in it are references such as gcp-secretmanager:projects/P/secrets/S, never values."
  default     = null

  validation {
    condition     = var.sinks_config == null || can(yamldecode(var.sinks_config))
    error_message = "sinks_config must be valid YAML."
  }
}

variable "create_state_bucket" {
  type        = bool
  description = "Create the state bucket (uniform access, public access prevention, versioning); false uses an existing bucket named state_bucket_name, or keeps no state when that is null."
  default     = true
}

variable "state_bucket_name" {
  type        = string
  description = "Bucket that remembers what was alerted (MUTGUARD_STATE_STORE gcs:BUCKET/PREFIX); null with create_state_bucket names it PROJECT-NAME-state."
  default     = null

  validation {
    condition     = var.state_bucket_name == null || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.state_bucket_name))
    error_message = "state_bucket_name must be a valid bucket name."
  }
}

variable "state_prefix" {
  type        = string
  description = "Object prefix of the state in the bucket."
  default     = "mutguard"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]+$", var.state_prefix)) && !startswith(var.state_prefix, "/")
    error_message = "state_prefix must be a relative object path."
  }
}

variable "kms_key_name" {
  type        = string
  description = "Customer-managed Cloud KMS key of the Pub/Sub topic (projects/P/locations/L/keyRings/R/cryptoKeys/K); null uses Google-managed encryption. The Pub/Sub service agent needs roles/cloudkms.cryptoKeyEncrypterDecrypter on it."
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be a Cloud KMS crypto key name."
  }
}

variable "audit_ingress_settings" {
  type        = string
  description = "Who can reach the audit HTTP function at the network level; IAM (audit_invokers) still decides who may call it."
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB", "ALLOW_ALL"], var.audit_ingress_settings)
    error_message = "audit_ingress_settings must be ALLOW_INTERNAL_ONLY, ALLOW_INTERNAL_AND_GCLB or ALLOW_ALL."
  }
}

variable "audit_invokers" {
  type        = list(string)
  description = "Principals allowed to call the audit HTTP function (roles/run.invoker), e.g. group:secops@example.com. Never public."
  default     = []

  validation {
    condition     = alltrue([for m in var.audit_invokers : can(regex("^(user|group|serviceAccount|principal|principalSet):.+$", m))])
    error_message = "audit_invokers must be user:, group:, serviceAccount:, principal: or principalSet: members; allUsers and allAuthenticatedUsers are refused."
  }
}

variable "event_retry" {
  type        = bool
  description = "Redeliver a scan message whose scan failed (RETRY_POLICY_RETRY); Pub/Sub retries with backoff until the message expires."
  default     = true
}

variable "max_instance_count" {
  type        = number
  description = "Most instances of each function at once (projects scanned in parallel)."
  default     = 10

  validation {
    condition     = var.max_instance_count >= 1 && var.max_instance_count <= 1000
    error_message = "max_instance_count must be between 1 and 1000."
  }
}

variable "available_memory" {
  type        = string
  description = "Memory of each function instance, e.g. 1Gi."
  default     = "1Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.available_memory))
    error_message = "available_memory must be like 512Mi or 1Gi."
  }
}

variable "timeout_seconds" {
  type        = number
  description = "Seconds one invocation may run (event-driven functions allow at most 540)."
  default     = 540

  validation {
    condition     = var.timeout_seconds >= 60 && var.timeout_seconds <= 540
    error_message = "timeout_seconds must be between 60 and 540."
  }
}

variable "gke_endpoint" {
  type        = string
  description = "Another GKE API endpoint (MUTGUARD_GKE_ENDPOINT), e.g. a Private Service Connect address; null uses the public one."
  default     = null
}

variable "log_retention_days" {
  type        = number
  description = "Days the functions' log bucket keeps their logs."
  default     = 365

  validation {
    condition     = var.log_retention_days >= 1 && var.log_retention_days <= 3650
    error_message = "log_retention_days must be between 1 and 3650."
  }
}

variable "build_service_account" {
  type        = string
  description = "Service account Cloud Build uses to build the functions (projects/P/serviceAccounts/EMAIL); null uses the project's default build service account."
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^projects/[^/]+/serviceAccounts/[^/]+@[^/]+$", var.build_service_account))
    error_message = "build_service_account must look like projects/PROJECT/serviceAccounts/EMAIL."
  }
}

variable "labels" {
  type        = map(string)
  description = "Labels added to every resource that takes them."
  default     = {}
}

variable "report_bucket_enabled" {
  type        = bool
  description = "Keep each published scan's JSON and HTML report in a private bucket the module creates (MUTGUARD_REPORT_STORE); alerts then link to the HTML report."
  default     = false
}

variable "report_bucket_name" {
  type        = string
  description = "Name of the report bucket; null names it PROJECT-NAME-reports."
  default     = null

  validation {
    condition     = var.report_bucket_name == null || can(regex("^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$", var.report_bucket_name))
    error_message = "report_bucket_name must be a valid bucket name."
  }
}

variable "report_prefix" {
  type        = string
  description = "Object prefix of the reports in the bucket."
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
  description = "How alerts link to a stored report (MUTGUARD_REPORT_LINK_TTL): seconds a V4 signed URL lasts (60-604800; signing grants the scanner roles/iam.serviceAccountTokenCreator on itself), or \"console\" for a Cloud console link."
  default     = "86400"

  validation {
    condition     = var.report_link_ttl == "console" || try(tonumber(var.report_link_ttl) >= 60 && tonumber(var.report_link_ttl) <= 604800 && can(regex("^[0-9]+$", var.report_link_ttl)), false)
    error_message = "report_link_ttl must be \"console\" or a number of seconds from 60 to 604800 (7 days)."
  }
}
