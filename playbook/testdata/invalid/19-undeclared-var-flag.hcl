playbook "x" {}

variable "version" {
  default = "1.0"
}

steps {
  package "demo-web" { version = var.version }
}
