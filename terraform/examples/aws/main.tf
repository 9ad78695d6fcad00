# The scanner account: both Lambdas, the queue, the schedule and the state table. Deploy
# ../aws-member in every account to scan, this one included.

provider "aws" {
  region = "eu-west-1"
}

module "mutguard" {
  source = "../../modules/aws"

  lambda_zip_path   = "${path.root}/../../../dist/mutguard-aws-lambda.zip"
  schedule_timezone = "Europe/Berlin"

  targets = [
    { provider = "eks", account = "111111111111" },
    { provider = "eks", account = "222222222222", region = "eu-west-1", cluster = "payments" },
  ]
  regions            = ["eu-west-1", "eu-central-1", "us-east-1"]
  member_account_ids = ["111111111111", "222222222222"]
  member_external_id = "mutguard-7f3c1a2e"

  sinks               = ["slack", "sqs"]
  sinks_config        = <<-YAML
    sinks:
      - kind: slack
        options:
          webhook_url_env: aws-secretsmanager:prod/mutguard/slack#webhook_url
      - kind: sqs
        options:
          queue_url: https://sqs.eu-west-1.amazonaws.com/333333333333/security-findings
  YAML
  secret_arns         = ["arn:aws:secretsmanager:eu-west-1:333333333333:secret:prod/mutguard/slack-AbCdEf"]
  sqs_sink_queue_arns = ["arn:aws:sqs:eu-west-1:333333333333:security-findings"]

  tags = {
    team = "platform-security"
  }
}

output "worker_role_arn" {
  description = "Give this to ../aws-member as scanner_role_arn."
  value       = module.mutguard.worker_role_arn
}
