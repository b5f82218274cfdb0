# The Lambda zips, uploaded from var.build_dir to a bucket of their own: Lambda takes a zip directly only up to
# 50 MB, and every zip carrying numpy is larger (the 250 MB limit is on the unzipped code, from S3 too). Each
# function is created from the object version Terraform uploaded, so a rebuilt zip is a new version and an update.

resource "aws_s3_bucket" "code" {
  # checkov:skip=CKV_AWS_144: rebuilt from the checkout by `nox -s bundles`: a replica would only double the storage
  # checkov:skip=CKV_AWS_145: SSE-S3 (AES-256); SSE-KMS with a customer key would cost at rest and per request
  # checkov:skip=CKV2_AWS_62: nothing reacts to a new zip: Terraform updates the function that uses it
  bucket        = "${var.bucket_name}-lambda-code"
  force_destroy = true # only Terraform writes here, and every object is rebuilt by `nox -s bundles`
}

resource "aws_s3_object" "code" {
  # checkov:skip=CKV_AWS_186: SSE-S3 like the bucket (no customer key at rest)
  for_each = local.functions
  bucket   = aws_s3_bucket.code.id
  key      = "${each.key}.zip"
  source   = "${var.build_dir}/${each.key}.zip"
  # A missing zip is refused by terraform_data.bundles with what to run, not by filemd5.
  source_hash = try(filemd5("${var.build_dir}/${each.key}.zip"), null)

  depends_on = [
    terraform_data.bundles, aws_s3_bucket_versioning.bucket, aws_s3_bucket_server_side_encryption_configuration.bucket,
    aws_s3_bucket_public_access_block.bucket,
  ]
}

resource "aws_s3_bucket_lifecycle_configuration" "code" {
  bucket = aws_s3_bucket.code.id

  rule {
    id     = "previous-zips"
    status = "Enabled"
    filter {
      prefix = "" # every object
    }
    # The zips a function was created from before its last update: kept a week to roll back by hand.
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.bucket]
}

resource "aws_s3_bucket_logging" "code" {
  bucket        = aws_s3_bucket.code.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "code/"

  depends_on = [aws_s3_bucket_policy.logs]
}

# Only TLS reaches the code.
resource "aws_s3_bucket_policy" "code" {
  bucket = aws_s3_bucket.code.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.code.arn, "${aws_s3_bucket.code.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.bucket]
}
