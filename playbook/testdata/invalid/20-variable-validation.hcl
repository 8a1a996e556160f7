playbook "x" {}

variable "batch" {
  type    = number
  default = 0
  validation {
    condition     = var.batch >= 1
    error_message = "batch must be at least 1."
  }
}

steps {
  command "a" { run = "true" }
}
