variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "eu-west-1"
}

variable "name_prefix" {
  description = "Prefix of every resource's name (functions, roles, the table, queues, parameters); one deployment per prefix and region."
  type        = string
  default     = "imageclassify"
}

variable "bucket_name" {
  description = "The images bucket (users' spaces, job outputs; uploads under inbox/ are labelled). Its access logs go to <bucket_name>-access-logs."
  type        = string
}

variable "admin_username" {
  description = "The first admin, created by the functions at first start."
  type        = string
  default     = "admin"
}

variable "admin_password" {
  description = "The first admin's password; stored as an SSM SecureString, never in the functions' configuration."
  type        = string
  sensitive   = true
}

variable "cors_origins" {
  description = "Origins the public function URLs answer CORS for besides the web console's own URL, e.g. [\"https://console.example.com\"]."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "Addresses told when a queue message is dead-lettered (each confirms the SNS subscription); empty: the alarm shows in CloudWatch only."
  type        = list(string)
  default     = []
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object of the images bucket is kept (versioning) before it is gone."
  type        = number
  default     = 30
}

variable "access_log_days" {
  description = "Days the images bucket's access logs are kept."
  type        = number
  default     = 365
}

variable "log_retention_days" {
  description = "Days the functions' CloudWatch logs are kept."
  type        = number
  default     = 365
}

variable "reserve_concurrency" {
  description = "Cap each function at its max_instances with reserved concurrency. A new account's quota (10) cannot reserve any: leave false there, and the SQS event source mappings still cap the queue consumers."
  type        = bool
  default     = false
}

variable "build_dir" {
  description = "Where `nox -s bundles` wrote the Lambda zips (<build_dir>/<target>.zip)."
  type        = string
  default     = "../../build/lambda"
}

variable "deletion_protection" {
  description = "Protect the DynamoDB table from deletion (accounts and balances live there); turn off to destroy the deployment."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete the buckets with everything in them."
  type        = bool
  default     = false
}
