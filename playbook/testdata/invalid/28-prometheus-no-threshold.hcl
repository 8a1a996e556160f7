playbook "x" {}

canary {
  gate {
    prometheus "errors" {
      url   = "http://127.0.0.1:9090"
      query = "sum(rate(errors_total[1m]))"
    }
  }
}

steps {
  command "a" { run = "true" }
}
