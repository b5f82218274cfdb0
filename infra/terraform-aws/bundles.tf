# The Lambda zips must be built before a plan: `nox -s bundles` writes build/lambda/<target>.zip. Without them
# the plan stops here with what to run (not with filebase64sha256's "no file exists" on the first missing one).

resource "terraform_data" "bundles" {
  input = sort(keys(local.functions))

  lifecycle {
    precondition {
      condition     = alltrue([for name in keys(local.functions) : fileexists("${var.build_dir}/${name}.zip")])
      error_message = "The Lambda bundles are missing from ${abspath(var.build_dir)}: ${join(", ", [for name in sort(keys(local.functions)) : "${name}.zip" if !fileexists("${var.build_dir}/${name}.zip")])}. Build them first: `nox -s bundles` (from the repository's root), or set build_dir to where they are."
    }
  }
}
