# How the cloud reaches the internal functions, one resource per trigger kind, each iterating over
# local.by_trigger[kind]. Each kind calls with its own service account, the only invoker of those functions.
#
#   queue     Pub/Sub push subscription with an OIDC token (its topic from targets.tf; a dead-letter topic
#             after 10 failed deliveries, itself read by the dead-letter handler's own push subscription)
#   bucket    Eventarc, from a Cloud Storage notification of the objects finalized under WATCH_PREFIX
#   schedule  Cloud Scheduler: POST to the function's URI with an OIDC token

locals {
  trigger_accounts = { queue = "icf-queue-push", bucket = "icf-bucket-events", schedule = "icf-scheduler" }
}

resource "google_service_account" "trigger" {
  for_each     = local.trigger_accounts
  account_id   = each.value
  display_name = "ImageClassify ${each.key} trigger: invokes the internal functions"

  depends_on = [google_project_service.api]
}

resource "google_cloud_run_service_iam_member" "trigger_invokes" {
  for_each = local.internal
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger[each.value.trigger].email}"
}

# -- queue: topics and OIDC push subscriptions --------------------------------------------------------------

resource "google_pubsub_topic" "topic" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; messages carry only a job id and an object name, signed with INTERNAL_SECRET
  for_each = local.topics
  name     = each.key

  depends_on = [google_project_service.api]
}

resource "google_pubsub_subscription" "push" {
  for_each             = local.by_trigger["queue"]
  name                 = "${replace(each.key, "_", "-")}-push"
  topic                = google_pubsub_topic.topic[each.value.topic].id
  ack_deadline_seconds = min(600, max(10, each.value.timeout))

  push_config {
    push_endpoint = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.trigger["queue"].email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letter_topic == null ? [] : [each.value.dead_letter_topic]
    content {
      dead_letter_topic     = google_pubsub_topic.topic[dead_letter_policy.value].id
      max_delivery_attempts = 10
    }
  }

  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "300s"
  }
}

# Pub/Sub's own agent mints the push tokens (of the queue's subscriptions and of Eventarc's, on the uploads
# topics) and moves exhausted messages to the dead-letter topic.
resource "google_service_account_iam_member" "pubsub_mints_tokens" {
  for_each           = toset(["queue", "bucket"])
  service_account_id = google_service_account.trigger[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent

  depends_on = [time_sleep.service_agents] # the agent exists a while after the API is enabled
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = toset(compact([for fn in local.by_trigger["queue"] : fn.dead_letter_topic]))
  topic    = google_pubsub_topic.topic[each.key].id
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent

  depends_on = [time_sleep.service_agents]
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = { for name, fn in local.by_trigger["queue"] : name => fn if fn.dead_letter_topic != null }
  subscription = google_pubsub_subscription.push[each.key].id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent

  depends_on = [time_sleep.service_agents]
}

# -- bucket: objects finalized under the target's WATCH_PREFIX, through Eventarc -----------------------------
# Cloud Storage notifies a topic of the objects finalized under the prefix only, and Eventarc delivers that
# topic's messages to the function. (An Eventarc Cloud Storage trigger cannot filter by object name: every
# upload to a user's space, every copy a sort job makes and every label written would start the function.)

resource "google_pubsub_topic" "uploads" {
  # checkov:skip=CKV_GCP_83: Google-managed encryption; messages carry only an object's name and metadata
  for_each = local.by_trigger["bucket"]
  name     = "${replace(each.key, "_", "-")}-uploads"

  depends_on = [google_project_service.api]
}

# Cloud Storage's agent publishes the notifications: on these topics only.
data "google_storage_project_service_account" "gcs" {
  depends_on = [time_sleep.service_agents]
}

resource "google_pubsub_topic_iam_member" "gcs_publishes_uploads" {
  for_each = local.by_trigger["bucket"]
  topic    = google_pubsub_topic.uploads[each.key].id
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

resource "google_storage_notification" "uploads" {
  for_each           = local.by_trigger["bucket"]
  bucket             = google_storage_bucket.images.name
  payload_format     = "JSON_API_V1"
  topic              = google_pubsub_topic.uploads[each.key].id
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = each.value.env.WATCH_PREFIX

  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_uploads]
}

resource "google_eventarc_trigger" "bucket" {
  for_each        = local.by_trigger["bucket"]
  name            = replace(each.key, "_", "-")
  location        = var.region
  service_account = google_service_account.trigger["bucket"].email

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  transport {
    pubsub {
      topic = google_pubsub_topic.uploads[each.key].id
    }
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.fn[each.key].name
      region  = var.region
    }
  }

  # The first trigger of a project fails while Eventarc's and Pub/Sub's agents and these grants propagate.
  depends_on = [time_sleep.event_grants]
}

resource "time_sleep" "event_grants" {
  create_duration = "60s"
  depends_on = [
    time_sleep.service_agents,
    google_service_account_iam_member.pubsub_mints_tokens,
    google_project_iam_member.events_receiver,
    google_cloud_run_service_iam_member.trigger_invokes,
  ]
}

resource "google_project_iam_member" "events_receiver" {
  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger["bucket"].email}"
}

# -- schedule: Cloud Scheduler POSTs with an OIDC token --------------------------------------------------------

resource "google_cloud_scheduler_job" "schedule" {
  for_each         = local.by_trigger["schedule"]
  name             = "icf-${replace(each.key, "_", "-")}"
  region           = var.region
  schedule         = each.value.schedule
  time_zone        = "Etc/UTC"
  attempt_deadline = "${each.value.timeout + 20}s"

  retry_config {
    retry_count = 0 # the next run is minutes away and does the same work
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.trigger["schedule"].email
      audience              = google_cloudfunctions2_function.fn[each.key].service_config[0].uri
    }
  }

  depends_on = [google_project_service.api]
}
