# Operating it: log-based metrics from the functions' structured log lines (`severity`, `message`,
# `httpRequest` {status, latency}, and `event: "dead_letter"` when a message exhausted its deliveries),
# and an alert when anything is dead-lettered: that work was failed and refunded, and someone should look.

locals {
  # The functions' own log lines; Cloud Run's request log repeats every request, so latency leaves it out.
  services_filter = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=~\"^(${join("|", [for name in keys(local.functions) : replace(name, "_", "-")])})$\""
  app_log_filter  = "${local.services_filter} AND NOT log_id(\"run.googleapis.com/requests\")"
}

resource "google_logging_metric" "errors" {
  name   = "imageclassify/errors"
  filter = "${local.services_filter} AND severity>=ERROR"
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "ImageClassify errors"
    labels {
      key         = "service"
      value_type  = "STRING"
      description = "The function"
    }
  }
  label_extractors = { service = "EXTRACT(resource.labels.service_name)" }
}

resource "google_logging_metric" "latency" {
  name            = "imageclassify/request_latency"
  filter          = "${local.app_log_filter} AND httpRequest.latency:*"
  value_extractor = "REGEXP_EXTRACT(httpRequest.latency, \"([0-9.]+)s\")"
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "DISTRIBUTION"
    unit         = "s"
    display_name = "ImageClassify request latency"
    labels {
      key         = "service"
      value_type  = "STRING"
      description = "The function"
    }
    labels {
      key         = "status"
      value_type  = "INT64"
      description = "The HTTP status replied"
    }
  }
  label_extractors = {
    service = "EXTRACT(resource.labels.service_name)"
    status  = "EXTRACT(httpRequest.status)"
  }
  bucket_options {
    exponential_buckets {
      num_finite_buckets = 24
      growth_factor      = 2
      scale              = 0.001 # 1 ms .. ~4.7 hours
    }
  }
}

resource "google_logging_metric" "dead_letters" {
  name   = "imageclassify/dead_letters"
  filter = "${local.app_log_filter} AND jsonPayload.event=\"dead_letter\""
  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = "ImageClassify dead-lettered messages"
    labels {
      key         = "service"
      value_type  = "STRING"
      description = "The function that handled the dead letter"
    }
  }
  label_extractors = { service = "EXTRACT(resource.labels.service_name)" }
}

resource "google_monitoring_notification_channel" "email" {
  for_each     = toset(var.alert_emails)
  display_name = "ImageClassify alerts: ${each.key}"
  type         = "email"
  labels       = { email_address = each.key }
}

# An alert on a log-based metric created in the same apply fails (404) until the metric has propagated.
resource "time_sleep" "dead_letter_metric" {
  create_duration = "60s"
  triggers        = { metric = google_logging_metric.dead_letters.name }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  display_name          = "ImageClassify: queue messages dead-lettered"
  combiner              = "OR"
  notification_channels = [for channel in google_monitoring_notification_channel.email : channel.name]

  conditions {
    display_name = "A message exhausted its deliveries"
    condition_threshold {
      filter          = "metric.type=\"logging.googleapis.com/user/${time_sleep.dead_letter_metric.triggers["metric"]}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.service"]
      }
      trigger {
        count = 1
      }
    }
  }

  alert_strategy {
    auto_close = "86400s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "A queue message failed every delivery and went to the dead letter: its image was counted failed and its token refunded, so the job still finished. Look at the function's ERROR lines just before (metric imageclassify/errors) for the cause."
  }
}
