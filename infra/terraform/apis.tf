# The Google APIs the deployment uses, enabled by the deployment itself so that `terraform apply` works on a
# fresh project. They stay enabled on destroy: other things in the project may use them too.

locals {
  apis = toset([
    "artifactregistry.googleapis.com", # gen2 functions' images
    "cloudbuild.googleapis.com",       # builds the function sources
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com", # the sweeper's schedule
    "eventarc.googleapis.com",       # bucket uploads -> on_upload
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
