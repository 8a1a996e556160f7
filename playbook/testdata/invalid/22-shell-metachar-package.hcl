playbook "x" {}

steps {
  package "nginx; rm -rf /" {
    state = "latest"
  }
}
