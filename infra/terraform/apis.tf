# The Google APIs the deployment uses, enabled by the deployment itself so that `terraform apply` works on a
# fresh project. They stay enabled on destroy: other things in the project may use them too.
# cloudresourcemanager is listed for the record, but Terraform cannot turn it on for itself (reading the
# project and its IAM policy needs it first, hashicorp/terraform-provider-google#11435): the README's deploy
# steps enable it with gcloud before the first apply.

locals {
  apis = toset([
    "artifactregistry.googleapis.com", # gen2 functions' images
    "cloudbuild.googleapis.com",       # builds the function sources
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com", # data "google_project", project IAM grants
    "cloudscheduler.googleapis.com",       # the sweeper's schedule
    "eventarc.googleapis.com",             # bucket uploads -> on_upload
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

resource "google_project_service" "api" {
  for_each           = local.apis
  service            = each.key
  disable_on_destroy = false
}

# Enabling an API returns before its service agents (Pub/Sub's, Eventarc's, Cloud Storage's, Cloud Functions')
# exist and can be granted roles: the first apply on a fresh project waits here before granting or using them.
resource "time_sleep" "service_agents" {
  create_duration = "90s"
  depends_on      = [google_project_service.api]
}
