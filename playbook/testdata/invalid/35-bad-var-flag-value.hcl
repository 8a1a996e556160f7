playbook "x" {}

variable "tags" {
  type = list(string)
}

steps {
  puppet { tags = var.tags }
}
