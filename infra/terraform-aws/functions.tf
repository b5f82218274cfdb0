# One Lambda function per target, from its zip (build/lambda/<target>.zip, handler lambda_main.handler: the
# contract in README.md). The public targets get a function URL with no AWS authentication (each request is
# authenticated by the app itself) and CORS for the web console's URL; the others have no URL and are invoked
# by their trigger only (triggers.tf).

locals {
  function_names = { for name in keys(local.functions) : name => "${local.prefix}-${replace(name, "_", "-")}" }
  # The function URLs' CORS: Lambda answers the preflight and adds the headers itself, for these origins only
  # (the app sets none: CORS_ORIGINS is not in its environment). The same methods and headers as the app's
  # own CORS (common/httpguard.py).
  cors_origins = distinct(concat([trimsuffix(aws_lambda_function_url.web.function_url, "/")], var.cors_origins))
}

resource "aws_cloudwatch_log_group" "fn" {
  # checkov:skip=CKV_AWS_158: encrypted by CloudWatch Logs' own key; a customer key would cost at rest, and the lines hold no secret
  for_each          = local.functions
  name              = "/aws/lambda/${local.function_names[each.key]}"
  retention_in_days = var.log_retention_days
}

resource "aws_lambda_function" "fn" {
  # checkov:skip=CKV_AWS_117: no VPC: the functions reach only AWS's public endpoints, and a VPC would need NAT or endpoints that cost at rest
  # checkov:skip=CKV_AWS_116: no asynchronous invocations: URLs and SQS mappings are synchronous (SQS redrives to its own dead-letter queue), and a failed sweep is redone by the next
  # checkov:skip=CKV_AWS_173: the environment holds no secret (secrets are SSM parameter names, read at cold start); Lambda encrypts it at rest with its own key
  # checkov:skip=CKV_AWS_272: code signing needs an AWS Signer profile; the zips come from `nox -s bundles` in the same checkout
  # checkov:skip=CKV_AWS_50: X-Ray tracing is paid per trace and the app logs its own request lines
  # checkov:skip=CKV_AWS_115: reserved concurrency is var.reserve_concurrency (off by default: a new account's quota of 10 cannot reserve any)
  for_each      = local.functions
  function_name = local.function_names[each.key]
  role          = aws_iam_role.fn[each.key].arn
  # Amazon Linux 2023 (glibc 2.34): numpy 2.4 and ai-edge-litert have no wheel for python3.11's Amazon Linux 2
  # (glibc 2.26). infra/lambda_bundles.py builds the zips for this runtime (its RUNTIME).
  runtime       = "python3.12"
  handler       = "lambda_main.handler"
  architectures = ["x86_64"]
  memory_size   = each.value.memory
  timeout       = each.value.timeout
  # From S3 (code.tf): a zip over 50 MB cannot be uploaded to Lambda directly.
  s3_bucket         = aws_s3_object.code[each.key].bucket
  s3_key            = aws_s3_object.code[each.key].key
  s3_object_version = aws_s3_object.code[each.key].version_id
  # A missing zip is refused by terraform_data.bundles (bundles.tf) with what to run; try() keeps
  # filebase64sha256's own error from coming first.
  source_code_hash               = try(filebase64sha256("${var.build_dir}/${each.key}.zip"), null)
  reserved_concurrent_executions = var.reserve_concurrency ? each.value.max_instances : -1
  tags                           = { target = each.key, trigger = each.value.trigger }

  environment {
    variables = local.function_env[each.key]
  }

  depends_on = [
    terraform_data.bundles, aws_cloudwatch_log_group.fn, aws_iam_role_policy.fn, aws_ssm_parameter.admin_password,
    aws_ssm_parameter.internal_secret,
  ]
}

# The web console's URL: on its own, since every other public URL allows it as an origin.
resource "aws_lambda_function_url" "web" {
  # checkov:skip=CKV_AWS_258: public by design: the console is a public page; the API calls it makes authenticate themselves
  function_name      = aws_lambda_function.fn["web"].function_name
  authorization_type = "NONE"
}

resource "aws_lambda_function_url" "api" {
  # checkov:skip=CKV_AWS_258: public by design for trigger = "http" targets, which authenticate every request themselves (API key, Basic or session); internal targets have no URL
  for_each           = local.api
  function_name      = aws_lambda_function.fn[each.key].function_name
  authorization_type = "NONE"

  cors {
    allow_origins  = local.cors_origins
    allow_methods  = ["GET", "POST", "PUT", "DELETE"]
    allow_headers  = ["authorization", "content-type", "idempotency-key"]
    expose_headers = ["location", "retry-after", "www-authenticate"]
    max_age        = 3600
  }
}

locals {
  function_urls = merge(
    { web = aws_lambda_function_url.web.function_url },
    { for name, url in aws_lambda_function_url.api : name => url.function_url },
  )
}
