# The functions' secrets, as SSM SecureString parameters (encrypted with the account's aws/ssm key; standard
# parameters cost nothing at rest), never in their environment: each function gets `<NAME>_PARAMETER` for
# the ones its `secrets` list in targets.tf names, and may read only those (iam.tf); its handler reads them
# into `<NAME>` at cold start (README.md).
#
#   ADMIN_PASSWORD   the first admin's password (var.admin_password), for the functions that authenticate users
#   INTERNAL_SECRET  the HMAC key of queue messages (common/signing.py), generated here (Secrets Manager's
#                    GetRandomPassword: no other provider is needed), for every function that sends or handles
#                    them. Rotate: terraform apply -replace=aws_ssm_parameter.internal_secret
#                    (messages signed with the old key then go to the dead letter and are refunded).

locals {
  secrets = {
    ADMIN_PASSWORD  = "/${local.prefix}/ADMIN_PASSWORD"
    INTERNAL_SECRET = "/${local.prefix}/INTERNAL_SECRET"
  }
  # The console's endpoint map: a plain parameter, its name known before the functions exist.
  api_endpoints_parameter = "/${local.prefix}/API_ENDPOINTS"
  parameter_arn = {
    for name, path in merge(local.secrets, { API_ENDPOINTS = local.api_endpoints_parameter }) :
    name => "arn:${local.partition}:ssm:${var.region}:${local.account}:parameter${path}"
  }
}

resource "aws_ssm_parameter" "admin_password" {
  # checkov:skip=CKV_AWS_337: the account's aws/ssm key: a customer-managed KMS key would cost at rest
  name  = local.secrets["ADMIN_PASSWORD"]
  type  = "SecureString"
  value = var.admin_password
}

# A new value at every plan: the parameter keeps its first (ignore_changes) until it is replaced on purpose.
data "aws_secretsmanager_random_password" "internal_secret" {
  password_length     = 48
  exclude_punctuation = true
}

resource "aws_ssm_parameter" "internal_secret" {
  # checkov:skip=CKV_AWS_337: the account's aws/ssm key: a customer-managed KMS key would cost at rest
  name  = local.secrets["INTERNAL_SECRET"]
  type  = "SecureString"
  value = data.aws_secretsmanager_random_password.internal_secret.random_password

  lifecycle {
    ignore_changes = [value]
  }
}

# The web console's endpoint map (each public route -> the URL of the function serving it), read by the web
# function at cold start: the URLs exist only after the functions, so it cannot be in their environment.
resource "aws_ssm_parameter" "api_endpoints" {
  # checkov:skip=CKV2_AWS_34: not a secret: the public URLs of the API, which the console itself serves to every browser
  name  = local.api_endpoints_parameter
  type  = "String"
  value = jsonencode({ for route, fn in local.web_routes : route => trimsuffix(local.function_urls[fn], "/") })
}
