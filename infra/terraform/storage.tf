# Firestore (accounts, tokens, jobs) and three buckets: the users' images, the function sources, and the
# access logs of both.

resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = var.region
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"

  depends_on = [google_project_service.api]
}

# The users' files, job outputs, labels and custom models. Versioning keeps what a buggy job or a mistaken
# DELETE overwrote or removed for `noncurrent_version_days` days.
resource "google_storage_bucket" "images" {
  name                        = var.bucket_name
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.logs.name
  }
}

resource "google_storage_bucket" "sources" {
  name                        = "${var.project}-function-sources"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 7
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  logging {
    log_bucket = google_storage_bucket.logs.name
  }
}

resource "google_storage_bucket" "logs" {
  # checkov:skip=CKV_GCP_62: the access-log bucket itself: logging its own writes would log every log write
  name                        = "${var.bucket_name}-access-logs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = var.access_log_days
    }
    action {
      type = "Delete"
    }
  }
}

# Cloud Storage writes the usage logs as this Google group.
resource "google_storage_bucket_iam_member" "logs_writer" {
  bucket = google_storage_bucket.logs.name
  role   = "roles/storage.objectCreator"
  member = "group:cloud-storage-analytics@google.com"
}

# One source archive per target (`nox -s bundles`), named by its content so a change redeploys the function.
# A missing archive is refused by terraform_data.bundles (bundles.tf) with what to run; try() keeps filemd5's
# own error from coming first.
resource "google_storage_bucket_object" "source" {
  for_each = local.functions
  name     = "${each.key}-${try(filemd5("${var.build_dir}/${each.key}.zip"), "missing")}.zip"
  bucket   = google_storage_bucket.sources.name
  source   = "${var.build_dir}/${each.key}.zip"

  depends_on = [terraform_data.bundles]
}
