playbook "x" {}

steps {
  command "a" {
    creates = "/tmp/done"
  }
}
