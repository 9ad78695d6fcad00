# The scanner project: both functions, the topic, the schedule and the state bucket. In each GKE
# cluster, bind deploy/mutguard-reader.yaml's ClusterRole to the scanner's service account.

provider "google" {
  project = "secops-scanner-4821"
  region  = "europe-west1"
}

module "mutguard" {
  source = "../../modules/gcp"

  project_id      = "secops-scanner-4821"
  region          = "europe-west1"
  source_zip_path = "${path.root}/../../../dist/mutguard-gcp-function.zip"
  time_zone       = "Europe/Berlin"

  targets = [
    { provider = "gke", account = "shop-prod-1234" },
    { provider = "gke", account = "data-prod-5678", region = "europe-west4" },
  ]

  sinks          = ["slack"]
  sinks_config   = <<-YAML
    sinks:
      - kind: slack
        options:
          webhook_url_env: gcp-secretmanager:projects/secops-scanner-4821/secrets/mutguard-slack-webhook
  YAML
  secret_ids     = ["projects/secops-scanner-4821/secrets/mutguard-slack-webhook"]
  audit_invokers = ["group:secops@example.com"]

  labels = {
    team = "platform-security"
  }
}

output "scanner_service_account_email" {
  description = "Bind the mutguard-reader ClusterRole to this user in each cluster."
  value       = module.mutguard.scanner_service_account_email
}
