playbook "x" {}

variable "version" {
  default = "2.0"
}

steps {
  package "demo-web" { version = var.versoin }
}
