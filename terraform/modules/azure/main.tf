# mutguard on Azure: one Linux function app (timer scheduled_dispatch -> storage queue ->
# scan_target, and the audit HTTP function behind a function key) running as its system-assigned
# managed identity: data roles on its own storage account (no account key in its settings), read
# roles elsewhere.

locals {
  package_blob_name = "mutguard-azure-function-${filemd5(var.package_zip_path)}.zip"

  # Subscriptions whose clusters the identity lists: the ones named, and every target's.
  reader_subscription_ids = toset(concat(var.subscription_ids, [for t in var.targets : t.account]))

  # Null values are dropped below, so an unset option is absent rather than empty.
  environment = {
    MUTGUARD_TARGETS      = length(var.targets) > 0 ? jsonencode([for t in var.targets : { for k, v in t : k => v if v != null }]) : null
    MUTGUARD_QUEUE_NAME   = azurerm_storage_queue.scan.name
    MUTGUARD_SCHEDULE     = var.schedule
    MUTGUARD_SINKS        = length(var.sinks) > 0 ? join(",", var.sinks) : null
    MUTGUARD_SINKS_CONFIG = var.sinks_config
    MUTGUARD_STATE_STORE  = var.state_table_name == null ? null : "azure-table:${var.state_table_name}"
    # The Azure Table store reaches this endpoint as the app's managed identity: no account key
    # in any setting.
    MUTGUARD_AZURE_TABLE_ENDPOINT = var.state_table_name == null ? null : azurerm_storage_account.function.primary_table_endpoint
    MUTGUARD_ARM_ENDPOINT         = var.arm_endpoint
    # Reports go to a private container of the same account, reached as the managed identity;
    # its Storage Blob Data Owner role also lets it sign user delegation SAS links.
    MUTGUARD_REPORT_STORE    = var.report_container_enabled ? "azure-blob:${trimsuffix(azurerm_storage_account.function.primary_blob_endpoint, "/")}/${azurerm_storage_container.reports[0].name}/${var.report_prefix}" : null
    MUTGUARD_REPORT_LINK_TTL = var.report_container_enabled ? var.report_link_ttl : null
  }

  key_vault_settings = { for name, id in var.key_vault_secrets : name => "@Microsoft.KeyVault(SecretUri=${id})" }

  app_settings = merge(
    { for k, v in local.environment : k => v if v != null },
    local.key_vault_settings,
    {
      # Linux Consumption runs only from a package URL; the app's identity fetches it.
      WEBSITE_RUN_FROM_PACKAGE                     = azurerm_storage_blob.package.url
      WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID = "SystemAssigned"
    },
  )
}

# ---------------------------------------------------------------------------------------------
# Storage: the runtime's account, the scan queue, the package and the optional state table.

resource "azurerm_storage_account" "function" {
  #checkov:skip=CKV_AZURE_33:Queue reads, writes and deletes are logged by Azure Monitor diagnostic settings (azurerm_monitor_diagnostic_setting.storage), not the deprecated queue_properties logging this check reads.
  #checkov:skip=CKV_AZURE_59:A Consumption plan app has no VNet or fixed outbound addresses, so it reaches its storage over the public endpoint; no container or blob is public (allow_nested_items_to_be_public = false).
  #checkov:skip=CKV2_AZURE_33:Private endpoints need VNet integration, which the Consumption plan lacks.
  #checkov:skip=CKV2_AZURE_1:Microsoft-managed keys with infrastructure encryption; the account holds queue messages, the package and alert state, no customer data.
  #checkov:skip=CKV2_AZURE_40:The app uses its managed identity, but azurerm uploads the package blob with the account key unless the caller's provider sets storage_use_azuread.
  #checkov:skip=CKV2_AZURE_41:No SAS is issued: the package is fetched with the managed identity.
  name                              = var.storage_account_name
  resource_group_name               = var.resource_group_name
  location                          = var.location
  account_tier                      = "Standard"
  account_kind                      = "StorageV2"
  account_replication_type          = var.storage_replication_type
  min_tls_version                   = "TLS1_2"
  https_traffic_only_enabled        = true
  allow_nested_items_to_be_public   = false
  infrastructure_encryption_enabled = var.infrastructure_encryption_enabled
  cross_tenant_replication_enabled  = false
  shared_access_key_enabled         = true
  tags                              = var.tags

  blob_properties {
    delete_retention_policy {
      days = 7
    }
    container_delete_retention_policy {
      days = 7
    }
  }
}

resource "azurerm_storage_queue" "scan" {
  name               = "${var.name}-scan"
  storage_account_id = azurerm_storage_account.function.id
}

resource "azurerm_storage_container" "package" {
  #checkov:skip=CKV2_AZURE_21:Blob reads are logged by Azure Monitor diagnostic settings (azurerm_monitor_diagnostic_setting.storage), not the legacy Log Analytics storage insights this check looks for.
  name                  = "function-releases"
  storage_account_id    = azurerm_storage_account.function.id
  container_access_type = "private"
}

resource "azurerm_storage_blob" "package" {
  # The content hash in the name makes a new package a new URL, which restarts the app on it.
  name                   = local.package_blob_name
  storage_account_name   = azurerm_storage_account.function.name
  storage_container_name = azurerm_storage_container.package.name
  type                   = "Block"
  source                 = var.package_zip_path
  content_md5            = filemd5(var.package_zip_path)
}

resource "azurerm_storage_container" "reports" {
  #checkov:skip=CKV2_AZURE_21:Blob reads are logged by Azure Monitor diagnostic settings (azurerm_monitor_diagnostic_setting.storage), not the legacy Log Analytics storage insights this check looks for.
  count = var.report_container_enabled ? 1 : 0

  # Each published scan's JSON and HTML report (mutguard/publish/reports/azure_blob.py); Azure
  # Storage encrypts them at rest, and nothing in the account is public.
  name                  = var.report_container_name
  storage_account_id    = azurerm_storage_account.function.id
  container_access_type = "private"
}

resource "azurerm_storage_management_policy" "reports" {
  count = var.report_container_enabled ? 1 : 0

  storage_account_id = azurerm_storage_account.function.id

  rule {
    name    = "expire-reports"
    enabled = true
    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${azurerm_storage_container.reports[0].name}/${var.report_prefix}/"]
    }
    actions {
      base_blob {
        delete_after_days_since_creation_greater_than = var.report_retention_days
      }
    }
  }
}

resource "azurerm_storage_table" "state" {
  #checkov:skip=CKV2_AZURE_20:Table reads are logged by Azure Monitor diagnostic settings (azurerm_monitor_diagnostic_setting.storage), not the legacy Log Analytics storage insights this check looks for.
  count = var.state_table_name == null ? 0 : 1

  name               = var.state_table_name
  storage_account_id = azurerm_storage_account.function.id
}

# ---------------------------------------------------------------------------------------------
# Monitoring.

resource "azurerm_log_analytics_workspace" "this" {
  name                = "${var.name}-logs"
  resource_group_name = var.resource_group_name
  location            = var.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_in_days
  tags                = var.tags
}

# Who read, wrote or deleted what in the function's storage (queue messages, package, state).
resource "azurerm_monitor_diagnostic_setting" "storage" {
  for_each = var.storage_diagnostics_enabled ? toset(["blobServices", "queueServices", "tableServices"]) : toset([])

  name                       = "${var.name}-storage-logs"
  target_resource_id         = "${azurerm_storage_account.function.id}/${each.key}/default"
  log_analytics_workspace_id = azurerm_log_analytics_workspace.this.id

  enabled_log {
    category = "StorageRead"
  }

  enabled_log {
    category = "StorageWrite"
  }

  enabled_log {
    category = "StorageDelete"
  }
}

resource "azurerm_application_insights" "this" {
  name                = "${var.name}-insights"
  resource_group_name = var.resource_group_name
  location            = var.location
  workspace_id        = azurerm_log_analytics_workspace.this.id
  application_type    = "other"
  tags                = var.tags
}

# ---------------------------------------------------------------------------------------------
# The function app.

resource "azurerm_service_plan" "this" {
  #checkov:skip=CKV_AZURE_212:Consumption and Elastic Premium scale out by themselves; a minimum instance count only adds cost.
  #checkov:skip=CKV_AZURE_225:Zone redundancy is not offered on the Consumption plan; a missed run is retried by the next schedule.
  name                = "${var.name}-plan"
  resource_group_name = var.resource_group_name
  location            = var.location
  os_type             = "Linux"
  sku_name            = var.service_plan_sku
  tags                = var.tags
}

resource "azurerm_linux_function_app" "this" {
  #checkov:skip=CKV_AZURE_221:The Consumption plan has no private endpoints; the only HTTP function (audit) needs a function key.
  name                                           = var.function_app_name
  resource_group_name                            = var.resource_group_name
  location                                       = var.location
  service_plan_id                                = azurerm_service_plan.this.id
  storage_account_name                           = azurerm_storage_account.function.name
  storage_uses_managed_identity                  = true
  functions_extension_version                    = "~4"
  https_only                                     = true
  public_network_access_enabled                  = true
  ftp_publish_basic_authentication_enabled       = false
  webdeploy_publish_basic_authentication_enabled = false
  builtin_logging_enabled                        = false
  app_settings                                   = local.app_settings
  tags                                           = var.tags

  identity {
    type = "SystemAssigned"
  }

  site_config {
    minimum_tls_version                    = "1.2"
    scm_minimum_tls_version                = "1.2"
    ftps_state                             = "Disabled"
    http2_enabled                          = true
    application_insights_connection_string = azurerm_application_insights.this.connection_string

    application_stack {
      python_version = "3.12"
    }
  }

  lifecycle {
    precondition {
      condition     = length(var.key_vault_secrets) == 0 || var.key_vault_id != null
      error_message = "key_vault_secrets needs key_vault_id: the function gets Key Vault Secrets User on that vault."
    }
    precondition {
      condition     = length(setintersection(keys(var.key_vault_secrets), keys(local.environment))) == 0
      error_message = "key_vault_secrets must not redefine a setting the module sets (MUTGUARD_*)."
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Roles of the function's identity: data roles on its own storage account, reads elsewhere.

locals {
  principal_id = azurerm_linux_function_app.this.identity[0].principal_id

  # storage_uses_managed_identity makes the provider set AzureWebJobsStorage__accountName, which
  # the host and the queue trigger and output bindings (connection AzureWebJobsStorage) use:
  # - Storage Blob Data Owner: host coordination, keys, the timer's lock blobs, the package;
  # - Storage Queue Data Contributor: read, process and send messages, create <queue>-poison;
  # - Storage Table Data Contributor: the host's diagnostic events and the state table.
  storage_data_roles = toset([
    "Storage Blob Data Owner",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
  ])
}

resource "azurerm_role_assignment" "storage" {
  for_each = local.storage_data_roles

  scope                = azurerm_storage_account.function.id
  role_definition_name = each.value
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "subscription_reader" {
  for_each = local.reader_subscription_ids

  scope                = "/subscriptions/${each.value}"
  role_definition_name = "Reader"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "cluster_user" {
  for_each = toset(var.cluster_user_scopes)

  scope                = each.value
  role_definition_name = "Azure Kubernetes Service Cluster User Role"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "key_vault_secrets_user" {
  count = length(var.key_vault_secrets) > 0 ? 1 : 0

  scope                = var.key_vault_id
  role_definition_name = "Key Vault Secrets User"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}
