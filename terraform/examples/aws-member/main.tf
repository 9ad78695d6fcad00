# A member account: the read-only role the scanner assumes and an access entry per EKS cluster.
# Apply deploy/mutguard-reader.yaml in each cluster so the group mutguard-readers may read.

provider "aws" {
  region = "eu-west-1"
}

module "mutguard_reader" {
  source = "../../modules/aws-member"

  scanner_role_arn = "arn:aws:iam::333333333333:role/mutguard-worker"
  external_id      = "mutguard-7f3c1a2e"

  clusters = [
    { name = "payments" },
    { name = "checkout", region = "eu-central-1" },
  ]

  tags = {
    team = "platform-security"
  }
}

output "role_arn" {
  description = "The role the scanner assumes in this account."
  value       = module.mutguard_reader.role_arn
}
