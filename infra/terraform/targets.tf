# One entry per function target of infra/targets.py; tests/test_terraform.py evaluates these locals and fails
# when a registry target is missing here or has another trigger. Adding a target = one entry in `targets`.
# (Literals only: the test evaluates this file with `terraform console`, offline.)
#
#   trigger        http (public: it authenticates every request itself), queue (Pub/Sub push with OIDC),
#                  bucket (Eventarc, object finalized) or schedule (Cloud Scheduler with OIDC); all but
#                  http are internal-only
#   memory, cpu, concurrency, min_instances, max_instances, timeout   the Cloud Run service's size
#   firestore      reads and writes accounts and jobs
#   bucket_role    "viewer" or "user" on the images bucket, or null
#   publishes      topics it publishes to
#   topic          queue targets: the topic their push subscription reads
#   dead_letter_topic  queue targets: where a message goes after max_delivery_attempts (null: retried until
#                  the subscription's retention ends)
#   schedule       schedule targets: cron, UTC
#   secrets        Secret Manager secrets it gets as environment variables (see secrets.tf)
#   env            extra environment variables
#
# Sizes follow the cold starts measured by `nox -s bench`: the auth-only functions are small and start in
# ~0.2 s; the model-serving ones hold an 18 MB model and run one inference on all CPUs.

locals {
  sort_topic        = "sort-images"
  sort_dead_letters = "sort-images-dead-letter"

  target_defaults = {
    trigger           = "http"
    memory            = "256M"
    cpu               = "1"
    concurrency       = 20
    min_instances     = 0
    max_instances     = 20
    timeout           = 60
    firestore         = true
    bucket_role       = null
    publishes         = []
    topic             = null
    dead_letter_topic = null
    schedule          = null
    secrets           = []
    env               = {}
  }

  targets = {
    register = {
      secrets = ["ADMIN_PASSWORD"]
    }
    tokens = { # viewer, publishes, INTERNAL_SECRET: the admin page's re-drive lists a job's source and publishes
      concurrency = 40, bucket_role = "viewer", publishes = [local.sort_topic], secrets = ["ADMIN_PASSWORD", "INTERNAL_SECRET"]
    }
    files_api = {
      memory = "512M", bucket_role = "user", secrets = ["ADMIN_PASSWORD"]
    }
    classify = {
      memory  = "1Gi", cpu = "2", concurrency = 4, min_instances = 1, bucket_role = "viewer",
      secrets = ["ADMIN_PASSWORD"]
    }
    sort_job = {
      memory  = "1Gi", concurrency = 8, bucket_role = "viewer", publishes = [local.sort_topic],
      secrets = ["ADMIN_PASSWORD", "INTERNAL_SECRET"]
    }
    models = {
      memory  = "1Gi", cpu = "2", concurrency = 4, bucket_role = "user", publishes = [local.sort_topic],
      secrets = ["ADMIN_PASSWORD", "INTERNAL_SECRET"]
    }
    sort_worker = {
      trigger = "queue", topic = local.sort_topic, dead_letter_topic = local.sort_dead_letters,
      # 4 pushes in flight per CPU: while two images infer (one per interpreter of the pool), the others wait on
      # the bucket and Firestore, so both CPUs stay busy (at 2, each CPU idled through every read and commit)
      memory  = "1Gi", cpu = "2", concurrency = 8, timeout = 120, bucket_role = "user", publishes = [local.sort_topic],
      secrets = ["INTERNAL_SECRET"]
    }
    sort_dead_letter = {
      trigger = "queue", topic = local.sort_dead_letters, max_instances = 5, secrets = ["INTERNAL_SECRET"]
    }
    on_upload = {
      trigger   = "bucket", memory = "1Gi", cpu = "2", concurrency = 2, max_instances = 10, timeout = 120,
      firestore = false, bucket_role = "user", env = { WATCH_PREFIX = "inbox/", LABELS_PREFIX = "labels/" }
    }
    sweeper = {
      trigger     = "schedule", schedule = "*/5 * * * *", concurrency = 1, max_instances = 1, timeout = 300,
      bucket_role = "viewer", secrets = ["INTERNAL_SECRET"] # viewer: it counts space writes whose writer died
    }
    web = {
      concurrency = 80, firestore = false
    }
  }

  functions = { for name, settings in local.targets : name => merge(local.target_defaults, settings) }

  # The web console's endpoint map: each public route (first path segment) -> the function serving it.
  web_routes = {
    register             = "register", "api-key" = "register", sessions = "register", token = "tokens", tokens = "tokens",
    refill               = "tokens", admin = "tokens",
    usage                = "tokens", "usage.csv" = "tokens", webhooks = "tokens",
    files                = "files_api", classify = "classify", upload = "classify", predict = "classify", jobs = "sort_job",
    "classification-job" = "sort_job", models = "models"
    keys                 = "register", password = "register", account = "register"
  }

  # The functions fed by each trigger; every resource that wires a trigger iterates over its entry here.
  by_trigger = {
    for trigger in ["http", "queue", "bucket", "schedule"] :
    trigger => { for name, fn in local.functions : name => fn if fn.trigger == trigger }
  }
  internal = { for name, fn in local.functions : name => fn if fn.trigger != "http" }
  # Every topic named by a function, and the (function, secret) and (function, topic) grants.
  topics = toset(compact(flatten([
    for fn in local.functions : concat([fn.topic, fn.dead_letter_topic], fn.publishes)
  ])))
  secret_grants = {
    for grant in flatten([for name, fn in local.functions : [for s in fn.secrets : { fn = name, secret = s }]]) :
    "${grant.fn}/${grant.secret}" => grant
  }
  publish_grants = {
    for grant in flatten([for name, fn in local.functions : [for t in fn.publishes : { fn = name, topic = t }]]) :
    "${grant.fn}/${grant.topic}" => grant
  }
}
