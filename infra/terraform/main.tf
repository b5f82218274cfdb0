# ImageClassify Functions on Google Cloud: one Cloud Run function (gen2) per target,
# Firestore, the images bucket, Pub/Sub fan-out with a dead-letter topic, Eventarc for uploads.
# Build the sources first: `nox -s bundles` writes build/<target>.zip.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {}

locals {
  # HTTP functions (sort_worker and sort_dead_letter receive Pub/Sub pushes over HTTP, which functions-framework
  # turns into CloudEvents; Cloud Scheduler calls the sweeper). Sizes follow the cold starts measured by
  # `nox -s bench`: the auth-only functions are small and start in ~0.2 s; the model-serving ones hold an 18 MB
  # model and run one inference on all CPUs. sort_worker also embeds custom models' images and fits their heads
  # (a fit is bounded by MODEL_FIT_SECONDS, well inside its timeout).
  http_functions = {
    register = {
      entry_point = "register", memory = "256M", cpu = "1", concurrency = 20, min_instances = 0
    }
    tokens = {
      entry_point = "tokens", memory = "256M", cpu = "1", concurrency = 40, min_instances = 0
    }
    classify = {
      entry_point = "classify", memory = "1Gi", cpu = "2", concurrency = 4, min_instances = 1
    }
    sort_job = {
      entry_point = "sort_job", memory = "1Gi", cpu = "1", concurrency = 8, min_instances = 0
    }
    sort_worker = {
      entry_point = "sort_worker", memory = "2Gi", cpu = "2", concurrency = 2, min_instances = 0
    }
    sort_dead_letter = {
      entry_point = "sort_dead_letter", memory = "512M", cpu = "1", concurrency = 20, min_instances = 0
    }
    sweeper = {
      entry_point = "sweeper", memory = "256M", cpu = "1", concurrency = 1, min_instances = 0
    }
    files_api = {
      entry_point = "files_api", memory = "256M", cpu = "1", concurrency = 20, min_instances = 0
    }
    models = {
      entry_point = "models", memory = "1Gi", cpu = "1", concurrency = 8, min_instances = 0
    }
  }
  # the public API: every request authenticates itself; the others answer only their OIDC-signed callers
  public_functions = ["register", "tokens", "classify", "sort_job", "files_api", "models"]
  common_env = {
    STORE_BACKEND        = "firestore"
    GOOGLE_CLOUD_PROJECT = var.project
    STORAGE_BACKEND      = "gcs"
    BUCKET               = var.bucket_name
    QUEUE_BACKEND        = "pubsub"
    PUBSUB_TOPIC         = google_pubsub_topic.sort_images.name
    MODELS_DIR           = "models"
    ADMIN_USERNAME       = var.admin_username
  }
  all_functions = merge(local.http_functions, { on_upload = { entry_point = "on_upload" } })
}

# -- data ------------------------------------------------------------------------------

resource "google_firestore_database" "default" {
  name        = "(default)"
  location_id = var.region
  type        = "FIRESTORE_NATIVE"
}

resource "google_storage_bucket" "images" {
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
}

resource "google_storage_bucket" "sources" {
  name                        = "${var.project}-function-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
}

resource "google_storage_bucket_object" "source" {
  for_each = local.all_functions
  name     = "${each.key}-${filemd5("${var.build_dir}/${each.key}.zip")}.zip"
  bucket   = google_storage_bucket.sources.name
  source   = "${var.build_dir}/${each.key}.zip"
}

# -- the admin bootstrap secret ----------------------------------------------------------

resource "google_secret_manager_secret" "admin_password" {
  secret_id = "imageclassify-admin-password"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "admin_password" {
  secret      = google_secret_manager_secret.admin_password.id
  secret_data = var.admin_password
}

# -- one service account per function, least privilege -----------------------------------

resource "google_service_account" "fn" {
  for_each     = local.all_functions
  account_id   = "icf-${replace(each.key, "_", "-")}"
  display_name = "ImageClassify ${each.key} function"
}

resource "google_project_iam_member" "firestore" {
  for_each = local.http_functions
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_project_iam_member" "on_upload_events" {
  project = var.project
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.fn["on_upload"].email}"
}

resource "google_storage_bucket_iam_member" "read_images" {
  for_each = toset(["classify", "sort_job"])
  bucket   = google_storage_bucket.images.name
  role     = "roles/storage.objectViewer"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_storage_bucket_iam_member" "write_images" {
  for_each = toset(["sort_worker", "on_upload", "files_api", "models"])
  bucket   = google_storage_bucket.images.name
  role     = "roles/storage.objectUser"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

# sort jobs and training runs publish; the worker publishes a model's fit when its last chunk is in
resource "google_pubsub_topic_iam_member" "publishers" {
  for_each = toset(["sort_job", "models", "sort_worker"])
  topic    = google_pubsub_topic.sort_images.id
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_secret_manager_secret_iam_member" "admin_password" {
  for_each  = local.all_functions
  secret_id = google_secret_manager_secret.admin_password.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn[each.key].email}"
}

# GCS publishes the bucket's events through Pub/Sub for Eventarc.
data "google_storage_project_service_account" "gcs" {}

resource "google_project_iam_member" "gcs_publishes_events" {
  project = var.project
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# -- the functions -------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "http" {
  for_each = local.http_functions
  name     = replace(each.key, "_", "-")
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = each.value.entry_point
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source[each.key].name
      }
    }
  }

  service_config {
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    max_instance_request_concurrency = each.value.concurrency
    min_instance_count               = each.value.min_instances
    max_instance_count               = 20
    timeout_seconds                  = 60
    service_account_email            = google_service_account.fn[each.key].email
    ingress_settings                 = "ALLOW_ALL"
    environment_variables            = local.common_env
    secret_environment_variables {
      key        = "ADMIN_PASSWORD"
      project_id = var.project
      secret     = google_secret_manager_secret.admin_password.secret_id
      version    = "latest"
    }
  }

  depends_on = [google_secret_manager_secret_version.admin_password, google_secret_manager_secret_iam_member.admin_password]
}

resource "google_cloudfunctions2_function" "on_upload" {
  name     = "on-upload"
  location = var.region

  build_config {
    runtime     = "python311"
    entry_point = "on_upload"
    source {
      storage_source {
        bucket = google_storage_bucket.sources.name
        object = google_storage_bucket_object.source["on_upload"].name
      }
    }
  }

  service_config {
    available_memory                 = "1Gi"
    available_cpu                    = "2"
    max_instance_request_concurrency = 2
    min_instance_count               = 0
    max_instance_count               = 10
    timeout_seconds                  = 120
    service_account_email            = google_service_account.fn["on_upload"].email
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    environment_variables            = merge(local.common_env, { WATCH_PREFIX = "inbox/", LABELS_PREFIX = "labels/" })
  }

  event_trigger {
    trigger_region        = var.region
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.fn["on_upload"].email
    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.images.name
    }
  }

  depends_on = [google_project_iam_member.gcs_publishes_events, google_project_iam_member.on_upload_events]
}

# Anyone may call the public API functions (they authenticate users themselves).
resource "google_cloud_run_service_iam_member" "public" {
  for_each = toset(local.public_functions)
  location = var.region
  service  = google_cloudfunctions2_function.http[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# -- the sort fan-out: topic -> OIDC push -> sort_worker, with a dead-letter topic ------------

resource "google_pubsub_topic" "sort_images" {
  name = "sort-images"
}

resource "google_pubsub_topic" "sort_images_dead_letter" {
  name = "sort-images-dead-letter"
}

resource "google_service_account" "pusher" {
  account_id   = "icf-sort-pusher"
  display_name = "Push and scheduler identity for the internal functions"
}

resource "google_cloud_run_service_iam_member" "pusher_invokes_worker" {
  for_each = toset(["sort_worker", "sort_dead_letter", "sweeper"])
  location = var.region
  service  = google_cloudfunctions2_function.http[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

resource "google_service_account_iam_member" "pubsub_mints_tokens" {
  service_account_id = google_service_account.pusher.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription" "sort_worker_push" {
  name                 = "sort-worker-push"
  topic                = google_pubsub_topic.sort_images.id
  ack_deadline_seconds = 120

  push_config {
    push_endpoint = google_cloudfunctions2_function.http["sort_worker"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
    }
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.sort_images_dead_letter.id
    max_delivery_attempts = 10
  }

  retry_policy {
    minimum_backoff = "5s"
    maximum_backoff = "300s"
  }
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.sort_images_dead_letter.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  subscription = google_pubsub_subscription.sort_worker_push.id
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# -- dead letters: a message that exhausted its deliveries closes its image's (or training run's) books ---------

resource "google_pubsub_subscription" "sort_dead_letter_push" {
  name                 = "sort-dead-letter-push"
  topic                = google_pubsub_topic.sort_images_dead_letter.id
  ack_deadline_seconds = 60

  push_config {
    push_endpoint = google_cloudfunctions2_function.http["sort_dead_letter"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
}

# -- the sweeper: refunds expired reservations, closes stalled jobs and training runs ---------------------

resource "google_cloud_scheduler_job" "sweep" {
  name      = "imageclassify-sweep"
  region    = var.region
  schedule  = "*/5 * * * *"
  time_zone = "Etc/UTC"

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.http["sweeper"].service_config[0].uri
    oidc_token {
      service_account_email = google_service_account.pusher.email
    }
  }
}
