playbook "x" {}

batch "early" {
  size = 2
}

batch "early" {
  size = 4
}

steps {
  command "a" { run = "true" }
}
