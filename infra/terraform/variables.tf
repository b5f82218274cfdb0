variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region for the functions, the buckets, Firestore, Eventarc and Cloud Scheduler."
  type        = string
  default     = "europe-west1"
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
  description = "The first admin's password; stored in Secret Manager, never in the functions' configuration."
  type        = string
  sensitive   = true
}

variable "cors_origins" {
  description = "Origins the public functions answer CORS for (the web console's), e.g. [\"https://console.example.com\"]; empty: none."
  type        = list(string)
  default     = []
}

variable "alert_emails" {
  description = "Addresses told when a queue message is dead-lettered; empty: the alert shows in Cloud Monitoring only."
  type        = list(string)
  default     = []
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object of the images bucket is kept (versioning) before it is gone."
  type        = number
  default     = 30
}

variable "access_log_days" {
  description = "Days the buckets' access logs are kept."
  type        = number
  default     = 365
}

variable "build_dir" {
  description = "Where `nox -s bundles` wrote the zips."
  type        = string
  default     = "../../build"
}
