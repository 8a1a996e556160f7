playbook "x" {}

canary {
  hosts = 0
}

steps {
  command "a" { run = "true" }
}
