playbook "x" {}

settings {
  forks = 5
}

settings {
  forks = 10
}

steps {
  command "a" { run = "true" }
}
