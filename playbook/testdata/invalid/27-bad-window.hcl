playbook "x" {}

settings {
  window {
    days     = ["monday"]
    start    = "25:00"
    end      = "05:00"
    timezone = "Mars/Olympus"
  }
}

steps {
  command "a" { run = "true" }
}
