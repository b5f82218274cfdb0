output "function_urls" {
  description = "The URL of each public function (the API)."
  value       = { for name, fn in google_cloudfunctions2_function.fn : name => fn.service_config[0].uri if local.functions[name].trigger == "http" }
}

output "internal_functions" {
  description = "The internal functions and what triggers each."
  value       = { for name, fn in local.internal : name => fn.trigger }
}

output "bucket" {
  description = "The images bucket."
  value       = google_storage_bucket.images.name
}

output "console_url" {
  description = "The web console: open this URL (the origin every function the console calls allows, environment.tf)."
  value       = local.function_urls["web"]
}
