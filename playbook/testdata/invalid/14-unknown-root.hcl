playbook "x" {}

steps {
  command "a" {
    run  = "true"
    when = fact.role == "web"
  }
}
