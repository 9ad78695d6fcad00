# The read-only role mutguard's worker assumes in a member account (and in its own account:
# every account is read through this role), plus EKS access entries for in-cluster reads.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  eks_arn_prefix = "arn:${data.aws_partition.current.partition}:eks:*:${data.aws_caller_identity.current.account_id}"

  # deploy/mutguard-reader.yaml binds the read-only ClusterRole (and the kube-system aws-auth
  # Role) to this group; the access entries put the role's sessions in it.
  kubernetes_groups = ["mutguard-readers"]
}

data "aws_iam_policy_document" "trust" {
  statement {
    sid     = "MutguardScanner"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = [var.scanner_role_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [var.external_id]
    }
  }
}

resource "aws_iam_role" "reader" {
  name                 = var.role_name
  path                 = var.role_path
  description          = "mutguard: read-only EKS access for the scanner"
  assume_role_policy   = data.aws_iam_policy_document.trust.json
  max_session_duration = 3600
  permissions_boundary = var.permissions_boundary_arn
  tags                 = var.tags
}

# The reads mutguard makes (README "IAM permissions"), each on the resource type the Service
# Authorization Reference names for it.
data "aws_iam_policy_document" "reader" {
  statement {
    sid       = "ListClustersAndRegions"
    actions   = ["eks:ListClusters", "ec2:DescribeRegions"]
    resources = ["*"] # neither action supports resource-level permissions
  }

  statement {
    sid       = "ReadClusters"
    actions   = ["eks:DescribeCluster", "eks:ListAccessEntries", "eks:ListIdentityProviderConfigs"]
    resources = ["${local.eks_arn_prefix}:cluster/*"]
  }

  statement {
    sid       = "ReadAccessEntries"
    actions   = ["eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies"]
    resources = ["${local.eks_arn_prefix}:access-entry/*"]
  }

  statement {
    sid       = "ReadIdentityProviderConfigs"
    actions   = ["eks:DescribeIdentityProviderConfig"]
    resources = ["${local.eks_arn_prefix}:identityproviderconfig/*"]
  }
}

resource "aws_iam_role_policy" "reader" {
  name   = "mutguard-eks-read"
  role   = aws_iam_role.reader.id
  policy = data.aws_iam_policy_document.reader.json
}

# Clusters in the provider's region. A cluster elsewhere gets its aws_eks_access_entry from the
# caller, under that region's provider, with the role_arn and kubernetes_groups outputs.
resource "aws_eks_access_entry" "reader" {
  for_each = toset(var.clusters)

  cluster_name      = each.value
  principal_arn     = aws_iam_role.reader.arn
  type              = "STANDARD"
  kubernetes_groups = local.kubernetes_groups
  tags              = var.tags
}
