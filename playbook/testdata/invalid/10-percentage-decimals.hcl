playbook "x" {}

canary {
  hosts = "12.345%"
}

steps {
  command "a" { run = "true" }
}
