# DynamoDB (the store's one on-demand table, as common/adapters/store/dynamodb.py's create_table() makes it) and two buckets: the users' images and
# the access logs (of the images and of the Lambda code bucket, code.tf). An on-demand table and S3 cost nothing idle beyond what they store.

locals {
  store_table = "${local.prefix}-store"
}

resource "aws_dynamodb_table" "store" {
  # checkov:skip=CKV_AWS_119: encrypted at rest with DynamoDB's AWS-owned key; a customer-managed KMS key would cost at rest
  name                        = local.store_table
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "x_kind"
    type = "S"
  }
  attribute {
    name = "x_at"
    type = "N"
  }
  dynamic "attribute" {
    for_each = toset(local.store_indexes)
    content {
      name = "ix_${attribute.value}"
      type = "S"
    }
  }

  # The expiry sweeps' sparse index: only documents with a numeric `expires` carry x_kind (kind#shard) and x_at.
  global_secondary_index {
    name            = "by_expires"
    hash_key        = "x_kind"
    range_key       = "x_at"
    projection_type = "ALL"
  }
  dynamic "global_secondary_index" {
    for_each = toset(local.store_indexes)
    content {
      name            = "by_${global_secondary_index.value}"
      hash_key        = "ix_${global_secondary_index.value}"
      projection_type = "ALL"
    }
  }

  # Only the purged kinds' items carry `ttl` (the adapter's ttl_kinds): spends and space writes never expire by TTL.
  ttl {
    enabled        = true
    attribute_name = "ttl"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled = true
  }
}

# The users' files, job outputs, labels and custom models. Versioning keeps what a buggy job or a mistaken
# DELETE overwrote or removed for `noncurrent_version_days` days.
resource "aws_s3_bucket" "images" {
  # checkov:skip=CKV_AWS_144: one region: cross-region replication doubles the storage cost; versioning keeps what was overwritten
  # checkov:skip=CKV_AWS_145: SSE-S3 (AES-256); SSE-KMS with a customer key would cost at rest and per request
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket" "logs" {
  # checkov:skip=CKV_AWS_144: access logs stay in the region of the bucket they log
  # checkov:skip=CKV_AWS_145: S3 server access logging writes only to SSE-S3 buckets
  # checkov:skip=CKV_AWS_18: the access-log bucket itself: logging its own writes would log every log write
  # checkov:skip=CKV2_AWS_62: nothing reacts to access logs
  bucket        = "${var.bucket_name}-access-logs"
  force_destroy = var.force_destroy
}

locals {
  buckets = { images = aws_s3_bucket.images.id, logs = aws_s3_bucket.logs.id, code = aws_s3_bucket.code.id }
}

resource "aws_s3_bucket_public_access_block" "bucket" {
  for_each                = local.buckets
  bucket                  = each.value
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "bucket" {
  for_each = local.buckets
  bucket   = each.value
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "bucket" {
  for_each = local.buckets
  bucket   = each.value
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "bucket" {
  for_each = local.buckets
  bucket   = each.value
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "images" {
  bucket = aws_s3_bucket.images.id

  rule {
    id     = "noncurrent-versions"
    status = "Enabled"
    filter {
      prefix = "" # every object
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.bucket]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {
      prefix = "" # every object
    }
    expiration {
      days = var.access_log_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.bucket]
}

resource "aws_s3_bucket_logging" "images" {
  bucket        = aws_s3_bucket.images.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "images/"

  depends_on = [aws_s3_bucket_policy.logs] # S3 refuses a target it may not write to yet
}

# S3 server access logging writes as the logging service, for this account's images and code buckets only.
resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [for name, source in { images = aws_s3_bucket.images.arn, code = aws_s3_bucket.code.arn } : {
      Sid       = "S3ServerAccessLogs${title(name)}"
      Effect    = "Allow"
      Principal = { Service = "logging.s3.amazonaws.com" }
      Action    = "s3:PutObject"
      Resource  = "${aws_s3_bucket.logs.arn}/${name}/*"
      Condition = {
        ArnLike      = { "aws:SourceArn" = source }
        StringEquals = { "aws:SourceAccount" = local.account }
      }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.bucket]
}

# Only TLS reaches the images.
resource "aws_s3_bucket_policy" "images" {
  bucket = aws_s3_bucket.images.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "TLSOnly"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.images.arn, "${aws_s3_bucket.images.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.bucket]
}
