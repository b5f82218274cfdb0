# One role per function, granted only what its entry in targets.tf says it needs: its own log group, the
# DynamoDB table (store), the bucket prefixes it reads or writes, the queues it sends to or consumes, and
# its own SSM parameters.

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fn" {
  for_each           = local.functions
  name               = local.function_names[each.key]
  description        = "ImageClassify ${each.key} function"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

locals {
  bucket_arn = "arn:${local.partition}:s3:::${var.bucket_name}"
  table_arn  = "arn:${local.partition}:dynamodb:${var.region}:${local.account}:table/${local.store_table}"
  queue_arn  = { for queue in local.queues : queue => "arn:${local.partition}:sqs:${var.region}:${local.account}:${local.prefix}-${queue}" }
}

data "aws_iam_policy_document" "fn" {
  for_each = local.functions

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fn[each.key].arn}:*"]
  }

  dynamic "statement" {
    for_each = each.value.store ? [1] : []
    content {
      sid = "Store"
      actions = [
        "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
        "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem", "dynamodb:Query", "dynamodb:Scan",
      ]
      resources = [local.table_arn, "${local.table_arn}/index/*"]
    }
  }

  # Listing is granted on the whole bucket (names only): S3 answers a read or HEAD of a missing key with 403
  # instead of 404 unless the caller may list the bucket, and those requests carry no s3:prefix to condition on.
  dynamic "statement" {
    for_each = length(each.value.bucket_read) > 0 ? [1] : []
    content {
      sid       = "List"
      actions   = ["s3:ListBucket"]
      resources = [local.bucket_arn]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.bucket_read) > 0 ? [1] : []
    content {
      sid       = "ReadPrefixes"
      actions   = ["s3:GetObject"]
      resources = [for p in each.value.bucket_read : "${local.bucket_arn}/${p}*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.bucket_write) > 0 ? [1] : []
    content {
      sid       = "WritePrefixes"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = [for p in each.value.bucket_write : "${local.bucket_arn}/${p}*"]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.publishes) > 0 ? [1] : []
    content {
      sid       = "Send"
      actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
      resources = [for q in each.value.publishes : local.queue_arn[q]]
    }
  }

  dynamic "statement" {
    for_each = each.value.queue == null ? [] : [each.value.queue]
    content {
      sid       = "Consume"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
      resources = [local.queue_arn[statement.value]]
    }
  }

  dynamic "statement" {
    for_each = length(each.value.secrets) > 0 || each.key == "web" ? [1] : []
    content {
      sid       = "OwnParameters"
      actions   = ["ssm:GetParameter", "ssm:GetParameters"]
      resources = [for name in concat(each.value.secrets, each.key == "web" ? ["API_ENDPOINTS"] : []) : local.parameter_arn[name]]
    }
  }
}

resource "aws_iam_role_policy" "fn" {
  for_each = local.functions
  name     = "least-privilege"
  role     = aws_iam_role.fn[each.key].id
  policy   = data.aws_iam_policy_document.fn[each.key].json
}
