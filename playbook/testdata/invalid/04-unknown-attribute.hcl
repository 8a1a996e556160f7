playbook "x" {}

canary {
  host = 1
}

steps {
  command "a" { run = "true" }
}
