playbook "x" {}

batch "early" {
  hosts = "150%"
}

steps {
  command "a" { run = "true" }
}
