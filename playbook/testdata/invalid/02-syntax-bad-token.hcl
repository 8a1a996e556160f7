playbook "x" {}

targets {
  hosts = ["web",
}

steps {
  command "a" { run = "true" }
}
