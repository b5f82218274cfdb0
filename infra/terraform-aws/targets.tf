# One entry per function target of infra/targets.py; tests/test_terraform_aws.py evaluates these locals and
# fails when a registry target is missing here or has another trigger. Adding a target = one entry in `targets`.
# (Literals only: the test evaluates this file with `terraform console`, offline.)
#
#   trigger        http (public function URL: it authenticates every request itself), queue (an SQS event
#                  source mapping), bucket (S3 object-created notifications of WATCH_PREFIX through an SQS
#                  queue) or schedule (EventBridge); all but http have no URL and are invoked by AWS only
#   memory         MB; Lambda gives CPU in proportion (1769 MB = one vCPU, 3538 MB = two)
#   timeout        seconds
#   max_instances  the cap on concurrent instances: SQS mappings' maximum concurrency, and reserved concurrency
#                  when var.reserve_concurrency is on
#   store          reads and writes the DynamoDB table
#   bucket_read    prefixes of the images bucket it reads and lists
#   bucket_write   prefixes it writes and deletes ("" is the whole bucket)
#   publishes      queues it sends to
#   queue          queue and bucket targets: the queue whose messages invoke it
#   dead_letter    queue and bucket targets: where a message goes after max_receives failed deliveries (null:
#                  retried until the queue's retention ends)
#   batch_size     queue and bucket targets: messages per invocation (failures are reported per message)
#   schedule       schedule targets: an EventBridge schedule expression, UTC
#   secrets        SSM SecureString parameters it reads at cold start (see secrets.tf and README.md)
#   env            extra environment variables

locals {
  sort_queue        = "sort-images"
  sort_dead_letters = "sort-images-dead-letter"
  max_receives      = 10

  target_defaults = {
    trigger       = "http"
    memory        = 512
    timeout       = 60
    max_instances = 20
    store         = true
    bucket_read   = []
    bucket_write  = []
    publishes     = []
    queue         = null
    dead_letter   = null
    batch_size    = 1
    schedule      = null
    secrets       = []
    env           = {}
  }

  targets = {
    register = {
      memory = 1024, secrets = ["ADMIN_PASSWORD"] # bcrypt: CPU grows with memory
    }
    tokens = { # bucket_read, publishes, INTERNAL_SECRET: the admin page's re-drive lists a job's source and publishes
      memory = 1024, bucket_read = ["users/"], publishes = [local.sort_queue], secrets = ["ADMIN_PASSWORD", "INTERNAL_SECRET"]
    }
    files_api = {
      memory = 1024, bucket_read = ["users/"], bucket_write = ["users/"], secrets = ["ADMIN_PASSWORD"]
    }
    classify = {
      memory  = 3538, bucket_read = ["users/", "models/"],
      secrets = ["ADMIN_PASSWORD"]
    }
    sort_job = {
      memory  = 1769, bucket_read = ["users/", "models/"], publishes = [local.sort_queue],
      secrets = ["ADMIN_PASSWORD", "INTERNAL_SECRET"]
    }
    models = {
      memory  = 3538, bucket_read = ["users/", "models/"], bucket_write = ["models/"], publishes = [local.sort_queue],
      secrets = ["ADMIN_PASSWORD", "INTERNAL_SECRET"]
    }
    sort_worker = {
      trigger   = "queue", queue = local.sort_queue, dead_letter = local.sort_dead_letters, batch_size = 5,
      memory    = 3538, timeout = 120, bucket_read = ["users/", "models/"], bucket_write = ["users/", "models/"],
      publishes = [local.sort_queue], secrets = ["INTERNAL_SECRET"]
    }
    sort_dead_letter = {
      trigger = "queue", queue = local.sort_dead_letters, batch_size = 10, max_instances = 5,
      secrets = ["INTERNAL_SECRET"]
    }
    on_upload = {
      # writes labels/ and, with AUTOSORT_CLASSES, class folders at the bucket's root: the whole bucket
      trigger       = "bucket", queue = "uploads", dead_letter = "uploads-dead-letter", memory = 3538, timeout = 120,
      max_instances = 10, store = false, bucket_read = ["inbox/"], bucket_write = [""],
      env           = { WATCH_PREFIX = "inbox/", LABELS_PREFIX = "labels/" }
    }
    sweeper = {
      trigger     = "schedule", schedule = "rate(5 minutes)", max_instances = 1, timeout = 300,
      bucket_read = ["users/"], secrets = ["INTERNAL_SECRET"] # it counts space writes whose writer died
    }
    web = {
      memory = 256, store = false
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
  # The public functions the console calls (web serves the console itself, on its own origin).
  api = { for name, fn in local.by_trigger["http"] : name => fn if name != "web" }

  # Every queue named by a function; the consumed ones' redrive target and visibility (six times their
  # consumer's timeout, as AWS advises for event source mappings).
  queues = toset(compact(flatten([for fn in local.functions : concat([fn.queue, fn.dead_letter], fn.publishes)])))
  consumers = {
    for name, fn in local.functions : fn.queue => merge(fn, { name = name }) if fn.queue != null
  }

  # The store's one DynamoDB table (common/adapters/store/dynamodb.py, create_table()): item `pk` = kind#key,
  # one global secondary index `by_<field>` (hash key `ix_<field>`) per field the store finds records by
  # (the adapter's INDEXED), the sparse `by_expires` index, TTL on `ttl` (set on the purged kinds' items only).
  # Named <name_prefix>-store (storage.tf); tests/test_terraform_aws.py compares it with what create_table() makes.
  store_indexes = ["username", "job_id", "status", "owner", "holder", "usage_day"]

  # The (function, secret) pairs: each function reads only the parameters its `secrets` names.
  secret_grants = {
    for grant in flatten([for name, fn in local.functions : [for s in fn.secrets : { fn = name, secret = s }]]) :
    "${grant.fn}/${grant.secret}" => grant
  }
}
