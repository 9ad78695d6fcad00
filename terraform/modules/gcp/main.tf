# mutguard on Google Cloud: Cloud Scheduler -> Pub/Sub topic -> on_message (a dispatch fans out
# one scan message per project-location back onto the topic; a scan message is scanned), plus
# the audit HTTP function for on-demand scans, callable by IAM only.

locals {
  scanner_member = "serviceAccount:${google_service_account.scanner.email}"

  # Projects whose clusters the scanner lists: the ones named, and every target's.
  scan_project_ids = toset(concat(var.scan_project_ids, [for t in var.targets : t.account]))

  state_bucket_name = (
    var.state_bucket_name != null ? var.state_bucket_name
    : var.create_state_bucket ? "${var.project_id}-${var.name}-state"
    : null
  )

  report_bucket_name = coalesce(var.report_bucket_name, "${var.project_id}-${var.name}-reports")

  # Null values are dropped below, so an unset option is absent rather than empty.
  environment = {
    MUTGUARD_TARGETS      = length(var.targets) > 0 ? jsonencode([for t in var.targets : { for k, v in t : k => v if v != null }]) : null
    MUTGUARD_TOPIC        = google_pubsub_topic.scan.id
    MUTGUARD_SINKS        = length(var.sinks) > 0 ? join(",", var.sinks) : null
    MUTGUARD_SINKS_CONFIG = var.sinks_config
    MUTGUARD_STATE_STORE  = local.state_bucket_name == null ? null : "gcs:${local.state_bucket_name}/${var.state_prefix}"
    MUTGUARD_GKE_ENDPOINT = var.gke_endpoint
    MUTGUARD_REPORT_STORE = var.report_bucket_enabled ? "gcs:${google_storage_bucket.reports[0].name}/${var.report_prefix}" : null
    # Settings are strings: a number of seconds, or "console".
    MUTGUARD_REPORT_LINK_TTL = var.report_bucket_enabled ? var.report_link_ttl : null
  }
  function_environment = { for k, v in local.environment : k => v if v != null }
}

# ---------------------------------------------------------------------------------------------
# Optional report bucket: each published scan's JSON and HTML report (mutguard/publish/
# reports/gcs.py). Uniform access and enforced public access prevention keep it private;
# Cloud Storage encrypts every object at rest. Reports are deleted after report_retention_days.

resource "google_storage_bucket" "reports" {
  #checkov:skip=CKV_GCP_62:Only the scanner's service account writes reports; Cloud Audit Logs record reads.
  #checkov:skip=CKV_GCP_78:Each report is written once under its own name and never replaced; versions would only keep what the lifecycle rule deletes.
  count = var.report_bucket_enabled ? 1 : 0

  project                     = var.project_id
  name                        = local.report_bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  lifecycle_rule {
    condition {
      age            = var.report_retention_days
      matches_prefix = ["${var.report_prefix}/"]
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "report_writer" {
  count = var.report_bucket_enabled ? 1 : 0

  # Create objects only: a stored report is never replaced or deleted by the functions.
  bucket = google_storage_bucket.reports[0].name
  role   = "roles/storage.objectCreator"
  member = local.scanner_member
}

resource "google_storage_bucket_iam_member" "report_reader" {
  count = var.report_bucket_enabled && var.report_link_ttl != "console" ? 1 : 0

  # A signed URL reads with its signer's storage.objects.get.
  bucket = google_storage_bucket.reports[0].name
  role   = "roles/storage.objectViewer"
  member = local.scanner_member
}

resource "google_service_account_iam_member" "report_signer" {
  count = var.report_bucket_enabled && var.report_link_ttl != "console" ? 1 : 0

  # The functions' credentials hold no private key: a URL is signed through IAM signBlob, on
  # the scanner's own account only.
  service_account_id = google_service_account.scanner.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.scanner_member
}

# ---------------------------------------------------------------------------------------------
# Identities: the scanner (both functions run as it) and the trigger that delivers Pub/Sub
# messages to on_message. Neither holds a primitive role.

resource "google_service_account" "scanner" {
  project      = var.project_id
  account_id   = "${var.name}-scanner"
  display_name = "mutguard scanner"
  description  = "Runs the mutguard functions: reads GKE clusters, publishes scan messages and reports."
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name}-trigger"
  display_name = "mutguard trigger"
  description  = "Delivers the mutguard topic's messages to the on_message function."
}

resource "google_project_iam_member" "cluster_viewer" {
  for_each = local.scan_project_ids

  project = each.value
  role    = "roles/container.clusterViewer"
  member  = local.scanner_member
}

resource "google_secret_manager_secret_iam_member" "sink_secret" {
  for_each = toset(var.secret_ids)

  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.scanner_member
}

# The scc sink creates and updates findings (securitycenter.findings.update, .setState); SCC's
# findings are granted at the organization.
resource "google_organization_iam_member" "scc_findings" {
  count = var.scc_organization_id == null ? 0 : 1

  org_id = var.scc_organization_id
  role   = "roles/securitycenter.findingsEditor"
  member = local.scanner_member
}

resource "google_pubsub_topic_iam_member" "scan_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.scan.name
  role    = "roles/pubsub.publisher"
  member  = local.scanner_member
}

resource "google_pubsub_topic_iam_member" "sink_publisher" {
  for_each = toset(var.sink_topic_ids)

  topic  = each.value
  role   = "roles/pubsub.publisher"
  member = local.scanner_member
}

# ---------------------------------------------------------------------------------------------
# Buckets: the functions' source and the optional alert state.

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Holds only the deployment package; Cloud Audit Logs record access, a usage-log bucket adds nothing here.
  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "source" {
  # The content hash in the name makes a new package a new object, which redeploys the functions.
  name   = "mutguard-gcp-function-${filemd5(var.source_zip_path)}.zip"
  bucket = google_storage_bucket.source.name
  source = var.source_zip_path
}

resource "google_storage_bucket" "state" {
  #checkov:skip=CKV_GCP_62:Only the scanner's service account reads or writes the state; Cloud Audit Logs record it.
  count = var.create_state_bucket ? 1 : 0

  project                     = var.project_id
  name                        = local.state_bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = var.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  # Alert claims and scheduled runs' part records (mutguard/publish/stores/gcs.py) are needed for
  # minutes to hours; drop them after a week.
  lifecycle_rule {
    condition {
      age = 7
      matches_prefix = [
        for folder in ["claims", "runs"] : format("%s/%s/", trimsuffix(var.state_prefix, "/"), folder)
      ]
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_iam_member" "state" {
  count = local.state_bucket_name == null ? 0 : 1

  # Read, create, replace and delete (released claims) objects (mutguard/publish/stores/gcs.py).
  bucket = var.create_state_bucket ? google_storage_bucket.state[0].name : local.state_bucket_name
  role   = "roles/storage.objectUser"
  member = local.scanner_member
}

# ---------------------------------------------------------------------------------------------
# Topic and schedule.

resource "google_pubsub_topic" "scan" {
  project                    = var.project_id
  name                       = "${var.name}-scan"
  kms_key_name               = var.kms_key_name
  message_retention_duration = "86400s"
  labels                     = var.labels
}

resource "google_cloud_scheduler_job" "dispatch" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name}-dispatch"
  description = "mutguard: dispatch a scan of the configured targets"
  schedule    = var.schedule
  time_zone   = var.time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.scan.id
    data       = base64encode(jsonencode({ action = "dispatch", publish = true }))
  }

  retry_config {
    retry_count = 3
  }
}

# ---------------------------------------------------------------------------------------------
# Logs: both functions' logs are routed to a log bucket of their own, kept log_retention_days
# (the _Default bucket keeps its copy for its own retention, 30 days unless changed).

locals {
  function_names = ["${var.name}-on-message", "${var.name}-audit"]
  quoted_names   = join(" OR ", [for f in local.function_names : "\"${f}\""])
  function_log_filter = join(" OR ", [
    "(resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${local.quoted_names}))",
    "(resource.type=\"cloud_function\" AND resource.labels.function_name=(${local.quoted_names}))",
  ])
}

resource "google_logging_project_bucket_config" "functions" {
  project        = var.project_id
  location       = var.region
  bucket_id      = "${var.name}-logs"
  description    = "mutguard functions' logs"
  retention_days = var.log_retention_days
}

# A sink to a log bucket of its own project is authorized to write to it: no IAM grant.
resource "google_logging_project_sink" "functions" {
  project                = var.project_id
  name                   = "${var.name}-functions"
  description            = "Routes the mutguard functions' logs to their log bucket."
  destination            = "logging.googleapis.com/${google_logging_project_bucket_config.functions.id}"
  filter                 = local.function_log_filter
  unique_writer_identity = true
}

# ---------------------------------------------------------------------------------------------
# Functions: on_message behind the topic, audit over HTTP.

resource "google_cloudfunctions2_function" "on_message" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names[0]
  description = "mutguard: fans out dispatch messages and scans scan messages"
  labels      = var.labels

  build_config {
    runtime         = "python312"
    entry_point     = "on_message"
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    max_instance_count             = var.max_instance_count
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    environment_variables          = local.function_environment
    ingress_settings               = "ALLOW_INTERNAL_ONLY" # only Eventarc delivers to it
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.scanner.email
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic          = google_pubsub_topic.scan.id
    retry_policy          = var.event_retry ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"
    service_account_email = google_service_account.trigger.email
  }
}

resource "google_cloud_run_v2_service_iam_member" "on_message_trigger" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.on_message.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloudfunctions2_function" "audit" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names[1]
  description = "mutguard: scans the targets a POSTed payload names and returns the report"
  labels      = var.labels

  build_config {
    runtime         = "python312"
    entry_point     = "audit"
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    max_instance_count             = var.max_instance_count
    available_memory               = var.available_memory
    timeout_seconds                = var.timeout_seconds
    environment_variables          = local.function_environment
    ingress_settings               = var.audit_ingress_settings
    all_traffic_on_latest_revision = true
    service_account_email          = google_service_account.scanner.email
  }
}

# Calling the audit function takes roles/run.invoker on its service: IAM only, never public.
resource "google_cloud_run_v2_service_iam_member" "audit_invoker" {
  for_each = toset(var.audit_invokers)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.audit.service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}
