output "scanner_service_account_email" {
  description = "Email of the scanner's service account: bind deploy/mutguard-reader.yaml's ClusterRole to it as a User in each GKE cluster."
  value       = google_service_account.scanner.email
}

output "trigger_service_account_email" {
  description = "Email of the service account that delivers topic messages to on_message."
  value       = google_service_account.trigger.email
}

output "topic_id" {
  description = "The scan topic (MUTGUARD_TOPIC), projects/PROJECT/topics/NAME: publish {\"action\": \"dispatch\", \"publish\": true} to it to scan now."
  value       = google_pubsub_topic.scan.id
}

output "on_message_function_name" {
  description = "Full name of the on_message function."
  value       = google_cloudfunctions2_function.on_message.id
}

output "audit_function_name" {
  description = "Full name of the audit HTTP function."
  value       = google_cloudfunctions2_function.audit.id
}

output "audit_function_uri" {
  description = "URL of the audit function; POST an invoke payload to it with an identity token of an audit_invokers member."
  value       = google_cloudfunctions2_function.audit.service_config[0].uri
}

output "scheduler_job_name" {
  description = "Name of the Cloud Scheduler job."
  value       = google_cloud_scheduler_job.dispatch.name
}

output "source_bucket_name" {
  description = "Bucket holding the functions' source package."
  value       = google_storage_bucket.source.name
}

output "state_store" {
  description = "MUTGUARD_STATE_STORE (gcs:BUCKET/PREFIX), or null without state."
  value       = local.environment.MUTGUARD_STATE_STORE
}

output "log_bucket_id" {
  description = "The log bucket that keeps both functions' logs for log_retention_days."
  value       = google_logging_project_bucket_config.functions.id
}

output "report_bucket_name" {
  description = "Name of the bucket the functions store reports in, or null without one: grant roles/storage.objectViewer on it to the people who read reports in the console."
  value       = var.report_bucket_enabled ? google_storage_bucket.reports[0].name : null
}
