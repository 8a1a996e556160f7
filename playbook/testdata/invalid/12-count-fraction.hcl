playbook "x" {}

batch "half" {
  size = 1.5
}

steps {
  command "a" { run = "true" }
}
