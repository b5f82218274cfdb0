output "function_urls" {
  description = "The URL of each HTTP function."
  value       = { for name, fn in google_cloudfunctions2_function.http : name => fn.service_config[0].uri }
}

output "on_upload_function" {
  description = "The bucket-triggered function."
  value       = google_cloudfunctions2_function.on_upload.name
}

output "bucket" {
  value = google_storage_bucket.images.name
}

output "console_url" {
  description = "The web console."
  value       = google_cloudfunctions2_function.web.service_config[0].uri
}
