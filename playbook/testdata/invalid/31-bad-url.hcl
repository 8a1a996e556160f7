playbook "x" {}

steps {
  command "a" { run = "true" }
}

health {
  http {
    url = "lb.example/healthz"
  }
}
