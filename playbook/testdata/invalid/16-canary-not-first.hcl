playbook "x" {}

batch "early" {
  size = 2
}

canary {
  hosts = 1
}

steps {
  command "a" { run = "true" }
}
