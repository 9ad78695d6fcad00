variable "scanner_role_arn" {
  type        = string
  description = "ARN of the scanner's worker role (the worker_role_arn output of modules/aws), the only principal allowed to assume the read-only role."

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", var.scanner_role_arn))
    error_message = "scanner_role_arn must be an IAM role ARN."
  }
}

variable "external_id" {
  type        = string
  description = "External id the scanner must present (sts:ExternalId); the same value as member_external_id of modules/aws."

  validation {
    condition     = length(var.external_id) >= 2 && length(var.external_id) <= 1224 && can(regex("^[A-Za-z0-9+=,.@:/_-]+$", var.external_id))
    error_message = "external_id must be 2-1224 characters of letters, digits and +=,.@:/-_."
  }
}

variable "role_name" {
  type        = string
  description = "Name of the read-only role; must match member_role_name of modules/aws."
  default     = "MutguardReadOnly"

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be a valid IAM role name (1-64 characters)."
  }
}

variable "role_path" {
  type        = string
  description = "IAM path of the role; must match member_role_path of modules/aws."
  default     = "/"

  validation {
    condition     = can(regex("^/([A-Za-z0-9+=,.@_-]+/)*$", var.role_path))
    error_message = "role_path must start and end with '/'."
  }
}

variable "permissions_boundary_arn" {
  type        = string
  description = "Permissions boundary attached to the role, when the account requires one."
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM policy ARN."
  }
}

variable "clusters" {
  type        = list(string)
  description = "Names of the EKS clusters in the provider's region the scanner reads inside: each gets an access entry mapping the role to the Kubernetes group mutguard-readers. Clusters must use authentication mode API or API_AND_CONFIG_MAP. A cluster in another region needs an aws_eks_access_entry of the caller's, under that region's provider, for the role_arn output and the kubernetes_groups output."
  default     = []

  validation {
    condition     = alltrue([for c in var.clusters : can(regex("^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$", c))])
    error_message = "Each cluster must be a valid EKS cluster name."
  }

  validation {
    condition     = length(distinct(var.clusters)) == length(var.clusters)
    error_message = "clusters must not list the same cluster twice."
  }
}

variable "tags" {
  type        = map(string)
  description = "Tags added to the role and the access entries."
  default     = {}
}
