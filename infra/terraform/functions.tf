# One Cloud Run function (gen2) per target. Every one is deployed as an HTTP service: the internal ones are
# reached by an authenticated push, an Eventarc delivery or a Cloud Scheduler call (triggers.tf), and
# functions-framework turns the push bodies into CloudEvents for the `@cloud_event` targets.
#
# Health: the gen2 function resource has no startup or liveness probe setting (only google_cloud_run_v2_service
# has), so Cloud Run's default TCP startup probe applies; /healthz is there for an uptime check or the stack.

locals {
  # Each function's URL, known before it exists (Cloud Run's deterministic URL): a function that needs another's
  # URL (the console's endpoint map, the console's origin in CORS_ORIGINS, environment.tf) uses these, since the
  # functions' own attributes cannot feed another function's environment inside one for_each resource.
  function_urls = { for name in keys(local.functions) : name => "https://${replace(name, "_", "-")}-${data.google_project.this.number}.${var.region}.run.app" }
}

resource "google_cloudfunctions2_function" "fn" {
  # checkov:skip=CKV_GCP_124: public by design for trigger = "http" targets, which authenticate every request themselves; every other target is ALLOW_INTERNAL_ONLY (tests/test_terraform.py asserts both)
  for_each = local.functions
  name     = replace(each.key, "_", "-")
  location = var.region
  labels   = { app = "imageclassify", target = each.key, trigger = each.value.trigger }

  build_config {
    runtime     = "python311"
    entry_point = each.key
    # A build account of our own: since mid-2024 a new project's default build account may lack the rights
    # to build a function.
    service_account = google_service_account.build.id
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
    max_instance_count               = each.value.max_instances
    timeout_seconds                  = each.value.timeout
    service_account_email            = google_service_account.fn[each.key].email
    ingress_settings                 = each.value.trigger == "http" ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    environment_variables            = local.function_env[each.key]

    dynamic "secret_environment_variables" {
      for_each = toset(each.value.secrets)
      content {
        key        = secret_environment_variables.value
        project_id = var.project
        secret     = google_secret_manager_secret.secret[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_project_service.api,
    time_sleep.service_agents,
    time_sleep.build_grant,
    google_secret_manager_secret_version.admin_password,
    google_secret_manager_secret_version.internal_secret,
    google_secret_manager_secret_iam_member.access,
  ]
}

# Anyone may call the public functions: each authenticates every request itself (API key, Basic, or body).
resource "google_cloud_run_service_iam_member" "public" {
  # checkov:skip=CKV_GCP_102: public by design: authenticates every request itself
  for_each = local.by_trigger["http"]
  location = var.region
  service  = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# The account Cloud Build builds the functions as, with the builder role (logs, images, the sources bucket).
resource "google_service_account" "build" {
  account_id   = "icf-build"
  display_name = "ImageClassify function builds"

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "build" {
  # checkov:skip=CKV_GCP_49: the builder role is what Cloud Build's documentation grants a function's build account, at project level; only builds run as this account
  project = var.project
  role    = "roles/cloudbuild.builds.builder"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# A new grant takes a while to reach Cloud Build: the first build waits for it.
resource "time_sleep" "build_grant" {
  create_duration = "60s"
  depends_on      = [google_project_iam_member.build]
}
