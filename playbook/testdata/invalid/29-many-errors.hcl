playbook "x" {}

canary {
  hosts = "5"
}

batch "early" {
  hosts      = "25%"
  max_failed = -1
  retries    = 3
}

steps {
  service "nginx" { state = "restarted" }
  file "motd" {}
}
