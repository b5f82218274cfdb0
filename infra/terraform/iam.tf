# One service account per function, granted only what its entry in targets.tf says it needs.

resource "google_service_account" "fn" {
  for_each     = local.functions
  account_id   = "icf-${replace(each.key, "_", "-")}"
  display_name = "ImageClassify ${each.key} function"

  depends_on = [google_project_service.api]
}

resource "google_project_iam_member" "firestore" {
  for_each = { for name, fn in local.functions : name => fn if fn.firestore }
  project  = var.project
  role     = "roles/datastore.user"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_storage_bucket_iam_member" "images" {
  for_each = { for name, fn in local.functions : name => fn if fn.bucket_role != null }
  bucket   = google_storage_bucket.images.name
  role     = each.value.bucket_role == "user" ? "roles/storage.objectUser" : "roles/storage.objectViewer"
  member   = "serviceAccount:${google_service_account.fn[each.key].email}"
}

resource "google_pubsub_topic_iam_member" "publishes" {
  for_each = local.publish_grants
  topic    = google_pubsub_topic.topic[each.value.topic].id
  role     = "roles/pubsub.publisher"
  member   = "serviceAccount:${google_service_account.fn[each.value.fn].email}"
}
