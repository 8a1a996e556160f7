playbook "x" {}

stage "early" {
  hosts = 2
}

steps {
  command "a" { run = "true" }
}
