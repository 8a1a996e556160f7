playbook "x" {}

steps {
  package "demo-web" {
    version = "2.0"
    state   = "absent"
  }
}
