# The scanner subscription: the function app, its storage, queue, state table and monitoring. In
# each AKS cluster with Kubernetes RBAC, bind deploy/mutguard-reader.yaml's ClusterRole to the
# function's principal_id.

provider "azurerm" {
  features {}
  subscription_id = "00000000-0000-0000-0000-000000000000"
}

resource "azurerm_resource_group" "mutguard" {
  name     = "rg-mutguard"
  location = "westeurope"
}

module "mutguard" {
  source = "../../modules/azure"

  resource_group_name  = azurerm_resource_group.mutguard.name
  location             = azurerm_resource_group.mutguard.location
  function_app_name    = "contoso-mutguard"
  storage_account_name = "contosomutguard"
  package_zip_path     = "${path.root}/../../../dist/mutguard-azure-function.zip"

  targets = [
    { provider = "aks", account = "11111111-1111-1111-1111-111111111111" },
    { provider = "aks", account = "22222222-2222-2222-2222-222222222222", region = "westeurope", cluster = "payments" },
  ]
  cluster_user_scopes = [
    "/subscriptions/11111111-1111-1111-1111-111111111111",
    "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-payments/providers/Microsoft.ContainerService/managedClusters/payments",
  ]

  sinks        = ["teams"]
  sinks_config = <<-YAML
    sinks:
      - kind: teams
        options:
          url_env: MUTGUARD_TEAMS_WEBHOOK_URL
  YAML
  key_vault_id = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-secrets/providers/Microsoft.KeyVault/vaults/contoso-secops"
  key_vault_secrets = {
    MUTGUARD_TEAMS_WEBHOOK_URL = "https://contoso-secops.vault.azure.net/secrets/mutguard-teams-webhook"
  }

  tags = {
    team = "platform-security"
  }
}

output "principal_id" {
  description = "Bind the mutguard-reader ClusterRole to this object id in each cluster."
  value       = module.mutguard.principal_id
}
