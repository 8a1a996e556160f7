playbook "x" {}

settings {
  step_timeout = "48h"
}

steps {
  command "a" { run = "true" }
}
