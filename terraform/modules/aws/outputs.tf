output "dispatcher_function_name" {
  description = "Name of the dispatcher Lambda (invoke it with {\"action\": \"dispatch\", \"publish\": true} to scan now)."
  value       = aws_lambda_function.dispatcher.function_name
}

output "dispatcher_function_arn" {
  description = "ARN of the dispatcher Lambda."
  value       = aws_lambda_function.dispatcher.arn
}

output "worker_function_name" {
  description = "Name of the worker Lambda (invoke it with a \"scan\" payload to get a report back)."
  value       = aws_lambda_function.worker.function_name
}

output "worker_function_arn" {
  description = "ARN of the worker Lambda."
  value       = aws_lambda_function.worker.arn
}

output "worker_role_arn" {
  description = "ARN of the worker's role: give it to modules/aws-member as scanner_role_arn in every account to scan."
  value       = aws_iam_role.worker.arn
}

output "dispatcher_role_arn" {
  description = "ARN of the dispatcher's role."
  value       = aws_iam_role.dispatcher.arn
}

output "member_role_arn_template" {
  description = "MUTGUARD_ROLE_ARN: the member role ARN with {account} in place of the account id."
  value       = local.member_role_arn_template
}

output "queue_url" {
  description = "URL of the scan queue (MUTGUARD_QUEUE_URL)."
  value       = aws_sqs_queue.scan.url
}

output "queue_arn" {
  description = "ARN of the scan queue."
  value       = aws_sqs_queue.scan.arn
}

output "dead_letter_queue_url" {
  description = "URL of the dead-letter queue where scan messages land after max_receive_count failed deliveries."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.arn
}

output "dispatch_dead_letter_queue_url" {
  description = "URL of the dead-letter queue of dispatches the schedule could not deliver or the dispatcher failed: alarm on its depth."
  value       = aws_sqs_queue.dispatch_dead_letter.url
}

output "dispatch_dead_letter_queue_arn" {
  description = "ARN of the dispatch dead-letter queue."
  value       = aws_sqs_queue.dispatch_dead_letter.arn
}

output "schedule_arn" {
  description = "ARN of the EventBridge Scheduler schedule."
  value       = aws_scheduler_schedule.dispatch.arn
}

output "state_table_name" {
  description = "Name of the DynamoDB state table, or null without one."
  value       = var.state_table_name
}

output "state_table_arn" {
  description = "ARN of the DynamoDB state table, or null without one."
  value       = local.state_table_arn
}

output "log_group_names" {
  description = "CloudWatch log groups of the dispatcher and the worker."
  value = {
    dispatcher = aws_cloudwatch_log_group.dispatcher.name
    worker     = aws_cloudwatch_log_group.worker.name
  }
}

output "report_bucket_name" {
  description = "Name of the S3 bucket the worker stores reports in, or null without one."
  value       = var.report_bucket_enabled ? aws_s3_bucket.reports[0].id : null
}

output "report_bucket_arn" {
  description = "ARN of the report bucket, or null without one: grant s3:GetObject on REPORT_PREFIX/* to the people who read reports from the console."
  value       = var.report_bucket_enabled ? aws_s3_bucket.reports[0].arn : null
}

output "report_store" {
  description = "MUTGUARD_REPORT_STORE as the functions get it (s3:BUCKET/PREFIX), or null without a report bucket."
  value       = local.report_store
}
