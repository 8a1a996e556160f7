# Restart a service in rolling batches of 20% of the web hosts, taking each host
# out of the load balancer while it restarts.
#
#   drover run examples/rolling-restart.hcl --var service=nginx

playbook "rolling-restart" {
  description = "Restart a service, a few hosts at a time"
}

variable "service" {
  type    = string
  default = "nginx"
}

variable "lb" {
  type    = string
  default = "http://127.0.0.1:9000"
}

targets {
  hosts = ["web"]
}

batch "rolling" {
  size       = "20%"
  pause      = "10s"
  max_failed = 1
  gate {
    timeout  = "1m"
    interval = "5s"
    http "lb" {
      url    = "${var.lb}/healthz"
      status = 200
    }
  }
}

before {
  http "drain" {
    url    = "${var.lb}/pool/web/${host.name}"
    method = "DELETE"
  }
}

steps {
  service "restart" {
    name  = var.service
    state = "restarted"
  }
}

health {
  http {
    url      = "http://${host.address}:80/"
    status   = 200
    retries  = 10
    interval = "1s"
  }
}

after {
  http "undrain" {
    url    = "${var.lb}/pool/web/${host.name}"
    method = "PUT"
  }
}
