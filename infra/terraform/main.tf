# ImageClassify Functions on Google Cloud: one Cloud Run function (gen2) per target of infra/targets.py,
# Firestore, the images bucket, Pub/Sub fan-out with a dead-letter topic, Eventarc for uploads, Cloud
# Scheduler for the sweeper, secrets in Secret Manager, log-based metrics and a dead-letter alert.
# Build the sources first: `nox -s bundles` writes build/<target>.zip.
#
#   targets.tf     the targets and their per-target settings (the one map to extend)
#   functions.tf   the functions and who may call the public ones
#   triggers.tf    how the cloud reaches the internal ones: push subscriptions, Eventarc, Cloud Scheduler
#   iam.tf         one service account per function, least privilege
#   storage.tf     Firestore, the images, sources and access-log buckets
#   secrets.tf     ADMIN_PASSWORD and INTERNAL_SECRET
#   monitoring.tf  log-based metrics (errors, latency, dead letters) and the dead-letter alert
#   apis.tf        the Google APIs it enables

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

data "google_project" "this" {}

locals {
  # Settings every function gets; the defaults in common/config.py cover the rest. TRUSTED_PROXIES=1: Google's
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
  # Only the public functions answer browsers: the web console's origins.
  public_env = { CORS_ORIGINS = join(",", var.cors_origins) }

  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
