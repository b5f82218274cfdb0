output "function_urls" {
  description = "The URL of each public function (the API)."
  value       = { for name, url in local.function_urls : name => trimsuffix(url, "/") }
}

output "console_url" {
  description = "The web console: open this URL (the origin every other function URL answers CORS for)."
  value       = trimsuffix(aws_lambda_function_url.web.function_url, "/")
}

output "internal_functions" {
  description = "The internal functions and what triggers each."
  value       = { for name, fn in local.internal : name => fn.trigger }
}

output "bucket" {
  description = "The images bucket."
  value       = aws_s3_bucket.images.id
}

output "queues" {
  description = "Each queue's URL (sort-images is SQS_QUEUE_URL; the *-dead-letter ones are the redrive queues)."
  value       = { for name, queue in local.all_queues : name => queue.url }
}

output "table" {
  description = "The store's DynamoDB table (DYNAMODB_TABLE)."
  value       = aws_dynamodb_table.store.name
}

output "alerts_topic" {
  description = "The SNS topic the dead-letter alarms notify (subscribe more endpoints to it)."
  value       = aws_sns_topic.alerts.arn
}
