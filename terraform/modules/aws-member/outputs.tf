output "role_arn" {
  description = "ARN of the read-only role the scanner assumes."
  value       = aws_iam_role.reader.arn
}

output "role_name" {
  description = "Name of the read-only role."
  value       = aws_iam_role.reader.name
}

output "kubernetes_groups" {
  description = "Kubernetes groups the access entries map the role to; deploy/mutguard-reader.yaml binds them."
  value       = local.kubernetes_groups
}

output "access_entry_arns" {
  description = "ARN of each cluster's access entry, keyed by cluster name."
  value       = { for key, entry in aws_eks_access_entry.reader : key => entry.access_entry_arn }
}
