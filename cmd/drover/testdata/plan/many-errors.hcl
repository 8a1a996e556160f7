playbook "broken" {}

variable "version" {
  type = string
}

stage "early" {}

batch "b" {
  pause = "10 seconds"
}

steps {
  command "a" {
    run  = "true"
    when = contians(host.groups, "web")
  }
  service "nginx" { state = "running" }
}
