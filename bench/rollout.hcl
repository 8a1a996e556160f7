# make bench: the drover side of the rollout comparison. The same work as
# bench/rollout.yml: demo-web to var.version on every host, ten hosts at a time
# (batch k+1 starts when batch k is done), a restart, and a health check of
# GET ADDR:8080/health from the controller.
#
#   drover run bench/rollout.hcl --var version=2.0 --yes -i INVENTORY --forks 50

playbook "bench-rollout" {
  description = "demo-web to var.version in batches of 10, health-checked"
}

variable "version" {
  type    = string
  default = "2.0"
}

settings {
  forks        = 50
  step_timeout = "5m"
}

batch "all" {
  size = 10
}

steps {
  package "demo-web" { version = var.version }
  service "demo-web" { state = "restarted" }
}

health {
  http {
    url      = "http://${host.address}:8080/health"
    status   = 200
    body     = "ok ${var.version}"
    retries  = 10
    interval = "1s"
  }
}
