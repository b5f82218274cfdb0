# How AWS reaches the internal functions, one resource per trigger kind, each iterating over
# local.by_trigger[kind]; none of them has a URL.
#
#   queue     an SQS event source mapping on the target's queue, reporting failures per message
#             (ReportBatchItemFailures); after max_receives failed deliveries SQS moves a message to the
#             target's dead-letter queue, itself read by the dead-letter handler's own mapping
#   bucket    S3 notifies the target's queue of the objects created under WATCH_PREFIX only, and an event
#             source mapping delivers that queue like any other (a failed upload ends in its dead-letter queue)
#   schedule  an EventBridge rule invokes the function on its schedule

locals {
  # The dead-letter queues (each only for the queues that name it) and the others; each queue's visibility
  # timeout is six times its consumer's timeout, as AWS advises for event source mappings.
  dead_letter_queues = toset(compact([for fn in local.functions : fn.dead_letter]))
  redrive_sources = {
    for queue, fn in local.consumers : fn.dead_letter => "arn:${local.partition}:sqs:${var.region}:${local.account}:${local.prefix}-${queue}"... if fn.dead_letter != null
  }
  visibility = { for queue in local.queues : queue => min(43200, try(6 * local.consumers[queue].timeout, 30)) }
}

resource "aws_sqs_queue" "dead_letter" {
  for_each                   = local.dead_letter_queues
  name                       = "${local.prefix}-${each.key}"
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = 1209600 # 14 days, the longest: a dead letter keeps its first enqueue time
  visibility_timeout_seconds = local.visibility[each.key]
  receive_wait_time_seconds  = 20
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = local.redrive_sources[each.key]
  })
}

# Each consumed queue with a dead-letter queue redrives to it after max_receives failed deliveries.
resource "aws_sqs_queue" "queue" {
  for_each                   = setsubtract(local.queues, local.dead_letter_queues)
  name                       = "${local.prefix}-${each.key}"
  sqs_managed_sse_enabled    = true
  message_retention_seconds  = 1209600
  visibility_timeout_seconds = local.visibility[each.key]
  receive_wait_time_seconds  = 20
  redrive_policy = try(local.consumers[each.key].dead_letter, null) == null ? null : jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[local.consumers[each.key].dead_letter].arn
    maxReceiveCount     = local.max_receives
  })
}

locals {
  all_queues = merge(aws_sqs_queue.queue, aws_sqs_queue.dead_letter)
}

# -- queue and bucket: event source mappings -------------------------------------------------------------------

resource "aws_lambda_event_source_mapping" "queue" {
  for_each                = merge(local.by_trigger["queue"], local.by_trigger["bucket"])
  function_name           = aws_lambda_function.fn[each.key].arn
  event_source_arn        = local.all_queues[each.value.queue].arn
  batch_size              = each.value.batch_size
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    maximum_concurrency = max(2, each.value.max_instances) # SQS mappings' minimum is 2
  }

  depends_on = [aws_iam_role_policy.fn]
}

# -- bucket: objects created under the target's WATCH_PREFIX, through its queue ---------------------------------

resource "aws_sqs_queue_policy" "uploads" {
  for_each  = local.by_trigger["bucket"]
  queue_url = local.all_queues[each.value.queue].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "S3Notifies"
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sqs:SendMessage"
      Resource  = local.all_queues[each.value.queue].arn
      Condition = {
        ArnEquals    = { "aws:SourceArn" = aws_s3_bucket.images.arn }
        StringEquals = { "aws:SourceAccount" = local.account }
      }
    }]
  })
}

resource "aws_s3_bucket_notification" "uploads" {
  bucket = aws_s3_bucket.images.id

  dynamic "queue" {
    for_each = local.by_trigger["bucket"]
    content {
      id            = queue.key
      queue_arn     = local.all_queues[queue.value.queue].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = queue.value.env.WATCH_PREFIX
    }
  }

  depends_on = [aws_sqs_queue_policy.uploads]
}

# -- schedule: EventBridge rules ------------------------------------------------------------------------------

resource "aws_cloudwatch_event_rule" "schedule" {
  for_each            = local.by_trigger["schedule"]
  name                = local.function_names[each.key]
  description         = "Runs ${each.key} on its schedule"
  schedule_expression = each.value.schedule
}

resource "aws_cloudwatch_event_target" "schedule" {
  for_each = local.by_trigger["schedule"]
  rule     = aws_cloudwatch_event_rule.schedule[each.key].name
  arn      = aws_lambda_function.fn[each.key].arn

  retry_policy {
    maximum_retry_attempts       = 0 # the next run is minutes away and does the same work
    maximum_event_age_in_seconds = 60
  }
}

resource "aws_lambda_permission" "schedule" {
  for_each      = local.by_trigger["schedule"]
  statement_id  = "EventBridgeSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fn[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.schedule[each.key].arn
}
