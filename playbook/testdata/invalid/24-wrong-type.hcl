playbook "x" {}

settings {
  forks  = "many"
  become = "yes please"
}

steps {
  command "a" { run = "true" }
}
