# Every function's environment, in this one place: functions.tf sets it on the functions, and the cloud
# rehearsal (`nox -s serve -- --cloud`, infra/cloud_env.py) reads this file and targets.tf to give its
# functions the same. tests/test_terraform.py evaluates `function_env` and checks the rehearsal computes the
# same values. Keep the values literals or plain var./local. references: the rehearsal reads them as written
# (CORS_ORIGINS and API_ENDPOINTS are the two it computes itself, and the test compares them).

locals {
  # Settings every function gets; the defaults in common/core/config.py cover the rest. TRUSTED_PROXIES=1: Google's
  # front end appends the caller's address to X-Forwarded-For, and the peer itself is the front end.
  common_env = {
    STORE_BACKEND        = "firestore"
    GOOGLE_CLOUD_PROJECT = var.project
    STORAGE_BACKEND      = "gcs"
    BUCKET               = var.bucket_name
    QUEUE_BACKEND        = "pubsub"
    PUBSUB_TOPIC         = local.sort_topic
    MODELS_DIR           = "models"
    ADMIN_USERNAME       = var.admin_username
    TRUSTED_PROXIES      = "1"
  }

  # Only the public functions answer browsers: the web console's own URL always (nothing to set), and any
  # origins var.cors_origins adds.
  public_env = { CORS_ORIGINS = join(",", distinct(concat([local.function_urls["web"]], var.cors_origins))) }

  # Settings that name other deployed resources (targets.tf holds literals only): the web console's endpoint
  # map, each public route -> the URL of the function serving it.
  computed_env = {
    web = { API_ENDPOINTS = jsonencode({ for route, fn in local.web_routes : route => local.function_urls[fn] }) }
  }

  function_env = {
    for name, fn in local.functions : name => merge(
      local.common_env,
      fn.trigger == "http" ? local.public_env : {},
      fn.env,
      try(local.computed_env[name], {}),
    )
  }
}
