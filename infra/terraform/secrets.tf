# The functions' secrets, in Secret Manager (never in their plain environment); each function reads only the
# ones its `secrets` list in targets.tf names, as environment variables of the same name.
#
#   ADMIN_PASSWORD   the first admin's password (var.admin_password), for the functions that authenticate users
#   INTERNAL_SECRET  the HMAC key of queue messages (common/core/signing.py), generated here, for every function that
#                    publishes or handles them. Rotate: terraform apply -replace=random_password.internal_secret
#                    (messages signed with the old key then go to the dead letter and are refunded).

locals {
  secrets = {
    ADMIN_PASSWORD  = "imageclassify-admin-password"
    INTERNAL_SECRET = "imageclassify-internal-secret"
  }
}

resource "random_password" "internal_secret" {
  length  = 48
  special = false
}

resource "google_secret_manager_secret" "secret" {
  for_each  = local.secrets
  secret_id = each.value
  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

resource "google_secret_manager_secret_version" "admin_password" {
  secret      = google_secret_manager_secret.secret["ADMIN_PASSWORD"].id
  secret_data = var.admin_password
}

resource "google_secret_manager_secret_version" "internal_secret" {
  secret      = google_secret_manager_secret.secret["INTERNAL_SECRET"].id
  secret_data = random_password.internal_secret.result
}

resource "google_secret_manager_secret_iam_member" "access" {
  for_each  = local.secret_grants
  secret_id = google_secret_manager_secret.secret[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.fn[each.value.fn].email}"
}
