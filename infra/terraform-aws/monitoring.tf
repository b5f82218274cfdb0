# Operating it: an alarm on every dead-letter queue. A message there failed every delivery: its image was
# counted failed and its token refunded by the dead-letter handler (sort jobs), or an upload went unlabelled;
# someone should look at the function's ERROR lines just before.
#
#   dead_letters  a dead-letter queue holds a visible message: one nobody handled (uploads), or one its handler
#                 keeps failing on (sort)
#   dead_lettered a handled dead-letter queue delivered a message to its handler: something was dead-lettered,
#                 even when the handler took it within the minute (as Google's alert on the `dead_letter` log line)

locals {
  alarm_actions = [aws_sns_topic.alerts.arn]
}

resource "aws_sns_topic" "alerts" {
  # checkov:skip=CKV_AWS_26: CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed SNS key, and a customer key would cost at rest; alarms carry no data
  name = "${local.prefix}-alerts"
}

resource "aws_sns_topic_subscription" "email" {
  for_each  = toset(var.alert_emails)
  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.key
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  for_each            = local.dead_letter_queues
  alarm_name          = "${local.prefix}-${each.key}-visible"
  alarm_description   = "A message waits in the dead-letter queue ${each.key}: it failed every delivery. Look at the consuming function's ERROR lines just before."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = local.all_queues[each.key].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "dead_lettered" {
  for_each            = { for queue, fn in local.consumers : queue => fn if contains(local.dead_letter_queues, queue) }
  alarm_name          = "${local.prefix}-${each.key}-received"
  alarm_description   = "${each.value.name} handled a dead letter of ${each.key}: that work was failed and refunded. Look at the ERROR lines of the queue's consumer just before."
  namespace           = "AWS/SQS"
  metric_name         = "NumberOfMessagesReceived"
  dimensions          = { QueueName = local.all_queues[each.key].name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
}
