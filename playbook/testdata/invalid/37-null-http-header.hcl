playbook "x" {}

steps {
  package "demo-web" {}
}

health {
  http "health" {
    url     = "http://${host.address}:8080/health"
    headers = { Accept = "text/plain", X-Token = null }
  }
}
