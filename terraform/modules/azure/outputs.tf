output "function_app_name" {
  description = "Name of the function app."
  value       = azurerm_linux_function_app.this.name
}

output "function_app_id" {
  description = "ARM id of the function app."
  value       = azurerm_linux_function_app.this.id
}

output "audit_url" {
  description = "URL of the audit HTTP function; POST an invoke payload with the function key in the x-functions-key header."
  value       = "https://${azurerm_linux_function_app.this.default_hostname}/api/audit"
}

output "principal_id" {
  description = "Object id of the function's managed identity: bind deploy/mutguard-reader.yaml's ClusterRole to it as a User in each AKS cluster with Kubernetes RBAC."
  value       = azurerm_linux_function_app.this.identity[0].principal_id
}

output "storage_account_name" {
  description = "Name of the function's storage account."
  value       = azurerm_storage_account.function.name
}

output "queue_name" {
  description = "Name of the scan queue (MUTGUARD_QUEUE_NAME)."
  value       = azurerm_storage_queue.scan.name
}

output "state_table_name" {
  description = "Name of the state table, or null without one."
  value       = var.state_table_name
}

output "application_insights_id" {
  description = "ARM id of the Application Insights component receiving the function's telemetry."
  value       = azurerm_application_insights.this.id
}

output "log_analytics_workspace_id" {
  description = "ARM id of the Log Analytics workspace."
  value       = azurerm_log_analytics_workspace.this.id
}

output "report_container_name" {
  description = "Name of the container the function stores reports in, or null without one: give readers Storage Blob Data Reader on it."
  value       = var.report_container_enabled ? azurerm_storage_container.reports[0].name : null
}
