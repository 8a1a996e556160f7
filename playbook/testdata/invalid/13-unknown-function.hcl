playbook "x" {}

steps {
  command "a" {
    run  = "true"
    when = contians(host.groups, "web")
  }
}
