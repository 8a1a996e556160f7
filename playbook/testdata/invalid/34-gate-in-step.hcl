playbook "x" {}

steps {
  command "a" {
    run = "true"
    gate {
      wait = "5s"
    }
  }
}
