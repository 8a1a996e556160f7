playbook "x" {}

steps {
  service "nginx" {
    state = "running"
  }
}
