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

output "function_url_permissions" {
  description = "Run once after each apply that creates or replaces a public function (`terraform output -raw function_url_permissions | sh`): the lambda:InvokeFunction statement AWS has required of a function URL with no AWS auth since October 2025, which this provider version cannot write (README.md)."
  value = join("\n", [
    for name in sort(keys(local.function_urls)) : join(" ", [
      "aws lambda add-permission --region ${data.aws_region.this.name} --function-name ${aws_lambda_function.fn[name].function_name}",
      "--statement-id FunctionURLInvokeAllowPublicAccess --action lambda:InvokeFunction --principal '*'",
      "--invoked-via-function-url",
    ])
  ])
}
