# A member account: the read-only role the scanner assumes and an access entry per EKS cluster.
# Apply deploy/mutguard-reader.yaml in each cluster so the group mutguard-readers may read.

provider "aws" {
  region = "eu-west-1"
}

module "mutguard_reader" {
  source = "../../modules/aws-member"

  scanner_role_arn = "arn:aws:iam::333333333333:role/mutguard-worker"
  external_id      = "mutguard-7f3c1a2e"

  clusters = ["payments"]

  tags = {
    team = "platform-security"
  }
}

# A cluster in another region: its access entry, under that region's provider, for the same role.
provider "aws" {
  alias  = "eu_central_1"
  region = "eu-central-1"
}

resource "aws_eks_access_entry" "checkout" {
  provider = aws.eu_central_1

  cluster_name      = "checkout"
  principal_arn     = module.mutguard_reader.role_arn
  type              = "STANDARD"
  kubernetes_groups = module.mutguard_reader.kubernetes_groups
}
