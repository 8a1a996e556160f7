playbook "x" {}

batch "early" {
  size  = 2
  pause = "10 seconds"
}

steps {
  command "a" { run = "true" }
}
