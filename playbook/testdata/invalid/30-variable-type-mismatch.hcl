playbook "x" {}

variable "count" {
  type    = number
  default = "several"
}

steps {
  command "a" { run = "true" }
}
