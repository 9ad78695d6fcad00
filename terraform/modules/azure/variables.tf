variable "resource_group_name" {
  type        = string
  description = "Existing resource group the function app and its resources are created in."
}

variable "location" {
  type        = string
  description = "Azure region of the resources, e.g. westeurope."
}

variable "name" {
  type        = string
  description = "Prefix of the resource names other than the function app and storage account (plan, queue, workspace, Application Insights)."
  default     = "mutguard"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or '-', starting with a letter."
  }
}

variable "function_app_name" {
  type        = string
  description = "Globally unique name of the function app (NAME.azurewebsites.net)."

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,30}[a-z0-9]$", var.function_app_name))
    error_message = "function_app_name must be 2-32 lowercase letters, digits or '-' (longer names risk host id collisions)."
  }
}

variable "storage_account_name" {
  type        = string
  description = "Globally unique name of the function's storage account (runtime, scan queue, package, state table)."

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lowercase letters and digits."
  }
}

variable "storage_replication_type" {
  type        = string
  description = "Replication of the storage account."
  default     = "GRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.storage_replication_type)
    error_message = "storage_replication_type must be LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  }
}

variable "infrastructure_encryption_enabled" {
  type        = bool
  description = "Encrypt the storage account twice (infrastructure encryption); changing it recreates the account."
  default     = true
}

variable "package_zip_path" {
  type        = string
  description = "Path to dist/mutguard-azure-function.zip built by `make package` (function_app.py, host.json, .python_packages)."

  validation {
    condition     = endswith(var.package_zip_path, ".zip")
    error_message = "package_zip_path must point to the .zip file `make package` writes."
  }
}

variable "service_plan_sku" {
  type        = string
  description = "Plan of the function app: Y1 (Linux Consumption) or an Elastic Premium size."
  default     = "Y1"

  validation {
    condition     = contains(["Y1", "EP1", "EP2", "EP3"], var.service_plan_sku)
    error_message = "service_plan_sku must be Y1, EP1, EP2 or EP3."
  }
}

variable "schedule" {
  type        = string
  description = "NCRONTAB expression (six fields, UTC) of the timer that dispatches a scan (app setting MUTGUARD_SCHEDULE)."
  default     = "0 0 6 * * *"

  validation {
    condition     = length(split(" ", trimspace(var.schedule))) == 6
    error_message = "schedule must be a six-field NCRONTAB expression, e.g. \"0 0 6 * * *\"."
  }
}

variable "targets" {
  type = list(object({
    provider = string
    account  = string
    region   = optional(string)
    cluster  = optional(string)
  }))
  description = "What a dispatch scans when its payload names no targets (MUTGUARD_TARGETS): AKS subscriptions, optionally one location and one cluster. Their subscriptions are added to subscription_ids."
  default     = []

  validation {
    condition     = alltrue([for t in var.targets : t.provider == "aks" && can(regex("^[0-9a-fA-F-]{36}$", t.account))])
    error_message = "Each target needs provider \"aks\" and a subscription id as account."
  }
}

variable "subscription_ids" {
  type        = list(string)
  description = "Subscriptions whose managed clusters the function may list (Reader), besides the targets' subscriptions."
  default     = []

  validation {
    condition     = alltrue([for s in var.subscription_ids : can(regex("^[0-9a-fA-F-]{36}$", s))])
    error_message = "subscription_ids must be subscription ids (GUIDs)."
  }
}

variable "cluster_user_scopes" {
  type        = list(string)
  description = "Clusters (or resource groups or subscriptions holding them) whose user credential the function may list to read inside Entra ID clusters (Azure Kubernetes Service Cluster User Role)."
  default     = []

  validation {
    condition     = alltrue([for s in var.cluster_user_scopes : can(regex("^/subscriptions/[0-9a-fA-F-]{36}(/resourceGroups/[^/]+(/providers/Microsoft\\.ContainerService/managedClusters/[^/]+)?)?$", s))])
    error_message = "cluster_user_scopes must be ARM ids of managed clusters, resource groups or subscriptions."
  }
}

variable "key_vault_id" {
  type        = string
  description = "ARM id of the Key Vault (Azure RBAC authorization) holding the secrets in key_vault_secrets; the function gets Key Vault Secrets User on it."
  default     = null

  validation {
    condition     = var.key_vault_id == null || can(regex("^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\\.KeyVault/vaults/[^/]+$", var.key_vault_id))
    error_message = "key_vault_id must be the ARM id of a Key Vault."
  }
}

variable "key_vault_secrets" {
  type        = map(string)
  description = "App settings resolved from Key Vault: setting name (the environment variable sinks_config names, e.g. MUTGUARD_SLACK_WEBHOOK_URL) to the secret's versionless id (https://VAULT.vault.azure.net/secrets/NAME)."
  default     = {}

  validation {
    condition     = alltrue([for name, id in var.key_vault_secrets : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", name)) && can(regex("^https://[^/]+/secrets/[^/]+/?$", id))])
    error_message = "key_vault_secrets maps environment variable names to versionless secret ids (https://VAULT.vault.azure.net/secrets/NAME)."
  }
}

variable "sinks" {
  type        = list(string)
  description = "Sinks a publishing run uses when its payload names none (MUTGUARD_SINKS), e.g. [\"teams\", \"azure-queue\"]."
  default     = []
}

variable "sinks_config" {
  type        = string
  description = "YAML text of the `sinks:` list (MUTGUARD_SINKS_CONFIG). Secrets in it name environment variables that key_vault_secrets fills, never values."
  default     = null

  validation {
    condition     = var.sinks_config == null || can(yamldecode(var.sinks_config))
    error_message = "sinks_config must be valid YAML."
  }
}

variable "state_table_name" {
  type        = string
  description = "Table in the function's storage account that remembers what was alerted (MUTGUARD_STATE_STORE azure-table:TABLE); null keeps no state, so every publishing run sends a digest."
  default     = "mutguardstate"

  validation {
    condition     = var.state_table_name == null || can(regex("^[A-Za-z][A-Za-z0-9]{2,62}$", var.state_table_name))
    error_message = "state_table_name must be 3-63 letters and digits, starting with a letter."
  }
}

variable "arm_endpoint" {
  type        = string
  description = "Another Azure Resource Manager endpoint (MUTGUARD_ARM_ENDPOINT), e.g. https://management.usgovcloudapi.net for a sovereign cloud; null uses the public cloud."
  default     = null

  validation {
    condition     = var.arm_endpoint == null || can(regex("^https://", var.arm_endpoint))
    error_message = "arm_endpoint must be an https:// URL."
  }
}

variable "log_retention_in_days" {
  type        = number
  description = "Retention of the Log Analytics workspace behind Application Insights."
  default     = 365

  validation {
    condition     = var.log_retention_in_days >= 30 && var.log_retention_in_days <= 730
    error_message = "log_retention_in_days must be between 30 and 730."
  }
}

variable "storage_diagnostics_enabled" {
  type        = bool
  description = "Send the storage account's blob, queue and table read, write and delete logs to the Log Analytics workspace."
  default     = true
}

variable "tags" {
  type        = map(string)
  description = "Tags added to every resource that takes them."
  default     = {}
}

variable "report_container_enabled" {
  type        = bool
  description = "Keep each published scan's JSON and HTML report in a private container of the function's storage account (MUTGUARD_REPORT_STORE); alerts then link to the HTML report."
  default     = false
}

variable "report_container_name" {
  type        = string
  description = "Name of the report container."
  default     = "mutguard-reports"

  validation {
    condition     = can(regex("^[a-z0-9](-?[a-z0-9])+$", var.report_container_name)) && length(var.report_container_name) <= 63
    error_message = "report_container_name must be 3-63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit."
  }
}

variable "report_prefix" {
  type        = string
  description = "Blob name prefix of the reports in the container."
  default     = "reports"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9_.-]+)*$", var.report_prefix))
    error_message = "report_prefix must be one or more path segments of letters, digits, '_', '.' or '-', without leading or trailing '/'."
  }
}

variable "report_retention_days" {
  type        = number
  description = "Days a stored report is kept before the account's lifecycle management policy deletes it (the policy is the account's only one)."
  default     = 90

  validation {
    condition     = var.report_retention_days >= 1 && floor(var.report_retention_days) == var.report_retention_days
    error_message = "report_retention_days must be a whole number of days, at least 1."
  }
}

variable "report_link_ttl" {
  type        = string
  description = "How alerts link to a stored report (MUTGUARD_REPORT_LINK_TTL): seconds a read-only user delegation SAS lasts (60-604800), or \"console\" for the blob's URL, which opens only for someone signed in with read access."
  default     = "86400"

  validation {
    condition     = var.report_link_ttl == "console" || try(tonumber(var.report_link_ttl) >= 60 && tonumber(var.report_link_ttl) <= 604800 && can(regex("^[0-9]+$", var.report_link_ttl)), false)
    error_message = "report_link_ttl must be \"console\" or a number of seconds from 60 to 604800 (7 days)."
  }
}
