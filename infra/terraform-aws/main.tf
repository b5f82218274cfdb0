# ImageClassify Functions on AWS: one Lambda function per target of infra/targets.py, DynamoDB (one on-demand
# table per record kind), the images bucket, SQS with redrive queues, S3 -> SQS notifications for uploads, an
# EventBridge schedule for the sweeper, secrets in SSM Parameter Store, log groups and dead-letter alarms.
# Build the Lambda zips first: `nox -s bundles` writes build/lambda/<target>.zip (bundles.tf refuses to plan
# without them). README.md in this folder is the contract the zips and their handler must meet.
#
#   targets.tf     the targets and their per-target settings (the one map to extend), the DynamoDB table
#   environment.tf every function's environment
#   functions.tf   the functions, their log groups and function URLs (public targets)
#   triggers.tf    how AWS reaches the internal ones: SQS event source mappings, S3 notifications, the schedule
#   iam.tf         one role per function, least privilege
#   storage.tf     the DynamoDB table, the images and access-log buckets
#   code.tf        the bucket the Lambda zips are uploaded to (over 50 MB, Lambda takes them from S3 only)
#   secrets.tf     ADMIN_PASSWORD and INTERNAL_SECRET (SSM SecureString), the console's endpoint map
#   monitoring.tf  alarms on the dead-letter queues, and their SNS topic

terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = { app = "imageclassify" }
  }
}

data "aws_caller_identity" "this" {}
data "aws_partition" "this" {}
data "aws_region" "this" {}

locals {
  account   = data.aws_caller_identity.this.account_id
  partition = data.aws_partition.this.partition
  # Every resource's name starts with this (functions, roles, the table, queues, parameters).
  prefix = var.name_prefix
}
