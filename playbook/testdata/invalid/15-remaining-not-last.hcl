playbook "x" {}

remaining {
  parallel = 5
}

batch "late" {
  size = 2
}

steps {
  command "a" { run = "true" }
}
