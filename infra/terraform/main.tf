# ImageClassify Functions on Google Cloud: one Cloud Run function (gen2) per target of infra/targets.py,
# Firestore, the images bucket, Pub/Sub fan-out with a dead-letter topic, Eventarc for uploads, Cloud
# Scheduler for the sweeper, secrets in Secret Manager, log-based metrics and a dead-letter alert.
# Build the sources first: `nox -s bundles` writes build/<target>.zip (bundles.tf refuses to plan without them).
#
#   targets.tf     the targets and their per-target settings (the one map to extend)
#   environment.tf every function's environment (the cloud rehearsal, infra/cloud_env.py, reads it too)
#   functions.tf   the functions, their build account, and who may call the public ones
#   triggers.tf    how the cloud reaches the internal ones: push subscriptions, Eventarc, Cloud Scheduler
#   iam.tf         one service account per function, least privilege
#   storage.tf     Firestore, the images, sources and access-log buckets
#   secrets.tf     ADMIN_PASSWORD and INTERNAL_SECRET
#   monitoring.tf  log-based metrics (errors, latency, dead letters) and the dead-letter alert
#   apis.tf        the Google APIs it enables, and the wait for their service agents

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
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}

# Read once the resource-manager API is on (a fresh project has it off, and this read needs it).
data "google_project" "this" {
  depends_on = [google_project_service.api]
}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
