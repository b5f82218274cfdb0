# One Cloud Run function (gen2) per target. Every one is deployed as an HTTP service: the internal ones are
# reached by an authenticated push, an Eventarc delivery or a Cloud Scheduler call (triggers.tf), and
# functions-framework turns the push bodies into CloudEvents for the `@cloud_event` targets.
#
# Health: the gen2 function resource has no startup or liveness probe setting (only google_cloud_run_v2_service
# has), so Cloud Run's default TCP startup probe applies; /healthz is there for an uptime check or the stack.

locals {
  # Settings that name other deployed resources cannot live in targets.tf (literals only); an entry here per
  # target. A function that needs another's URL (the web console's endpoint map) uses function_urls: the
  # functions' own attributes cannot feed another function's environment inside one for_each resource.
  computed_env = {
    # the web console's endpoint map (API_ENDPOINTS): each public route -> the URL of the function serving it
    web = { API_ENDPOINTS = jsonencode({ for route, fn in local.web_routes : route => local.function_urls[fn] }) }
  }
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
    environment_variables = merge(
      local.common_env,
      each.value.trigger == "http" ? local.public_env : {},
      each.value.env,
      try(local.computed_env[each.key], {}),
    )

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
