playbook "x" {}

variable "version" {
  type = string
}

steps {
  package "demo-web" { version = var.version }
}
