# Every function's environment, in this one place (functions.tf sets it). Secrets and the console's endpoint
# map are not in it: each function gets `<NAME>_PARAMETER`, the SSM parameter its handler reads into `<NAME>`
# at cold start (README.md, the handler contract).

locals {
  # Settings every function gets; the defaults in common/config.py cover the rest. TRUSTED_PROXIES=0: the
  # handler takes the caller's address from the function URL event (requestContext.http.sourceIp), not from a
  # header. DATA_DIR: /tmp is the only writable place of a Lambda function.
  common_env = {
    STORE_BACKEND   = "dynamodb"
    DYNAMODB_TABLE  = local.store_table
    STORAGE_BACKEND = "s3"
    BUCKET          = var.bucket_name
    QUEUE_BACKEND   = "sqs"
    SQS_QUEUE_URL   = aws_sqs_queue.queue[local.sort_queue].url
    MODELS_DIR      = "models"
    DATA_DIR        = "/tmp/imageclassify"
    ADMIN_USERNAME  = var.admin_username
    TRUSTED_PROXIES = "0"
    # A function URL takes at most 6 MB of event, a binary body base64-encoded in it (~4.5 MB of bytes):
    # the app's own 413, which says what to do (POST /files/<path> for an upload form), comes before Lambda's
    # bare one. Images read from the bucket keep IMAGE_MAX_BYTES.
    MAX_BODY_BYTES = "4194304"
  }

  # Parameters read at cold start: the function's secrets, and the web console's endpoint map (which names
  # the other functions' URLs, known only once they exist: an environment variable would be a cycle).
  parameter_env = {
    for name, fn in local.functions : name => merge(
      { for s in fn.secrets : "${s}_PARAMETER" => local.secrets[s] },
      name == "web" ? { API_ENDPOINTS_PARAMETER = local.api_endpoints_parameter } : {},
    )
  }

  function_env = {
    for name, fn in local.functions : name => merge(local.common_env, fn.env, local.parameter_env[name])
  }
}
