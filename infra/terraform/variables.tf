variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region for the functions, the bucket and Firestore."
  type        = string
  default     = "europe-west1"
}

variable "bucket_name" {
  description = "The images bucket (sort jobs read and write here; uploads under inbox/ are labelled)."
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

variable "build_dir" {
  description = "Where `nox -s bundles` wrote the zips."
  type        = string
  default     = "../../build"
}
