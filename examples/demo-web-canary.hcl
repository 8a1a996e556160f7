# Upgrade the lab's test package demo-web: one canary per datacenter's worth of
# risk first, then a quarter of the fleet in pairs, then everything else.
# A bad version halts at the canary (exit 3) and the canary is rolled back.
#
#   drover run examples/demo-web-canary.hcl --var version=2.0

playbook "demo-web" {
  description = "Upgrade demo-web, one canary first"
}

variable "version" {
  type        = string
  default     = "2.0"
  description = "The demo-web version to install"
  validation {
    condition     = can(regex("^[0-9][0-9a-z.~+-]*$", var.version))
    error_message = "version must be a Debian version such as 2.0 or 2.1-1."
  }
}

variable "gate_address" {
  type        = string
  default     = "127.0.0.1:22"
  description = "host:port that must accept connections after every batch: your load balancer (the lab demo passes one of its hosts)"
}

targets {
  hosts = ["all"]
  where = facts.os.family == "Debian"
}

settings {
  forks        = 20
  become       = true
  step_timeout = "5m"
  lock         = true
}

canary {
  hosts     = 1
  spread_by = facts.networking.hostname
  gate {
    wait    = "2s"
    timeout = "30s"
    tcp "lb" { address = var.gate_address }
  }
}

batch "early" {
  hosts      = "25%"
  size       = 2
  pause      = "1s"
  max_failed = 0
  gate {
    timeout = "30s"
    tcp "lb" { address = var.gate_address }
  }
}

remaining {
  parallel   = 10
  max_failed = "10%"
}

steps {
  package "demo-web" { version = var.version }
  service "demo-web" {
    state = "restarted"
    when  = facts.init_system == "systemd"
  }
  command "smoke" {
    run = "dpkg-query -W -f '$${Version}' demo-web | grep -Fx -- '${var.version}'"
  }
}

health {
  command "running" {
    run      = "test -f /etc/demo-web.conf"
    retries  = 5
    interval = "1s"
  }
  # The service answers "ok VERSION" on ADDRESS:8080/health; a broken release does not.
  http "health" {
    url      = "http://${host.address}:8080/health"
    status   = 200
    body     = "ok ${var.version}"
    retries  = 5
    interval = "1s"
  }
}

rollback {
  # prior.package is "" when the host did not have the package: remove it again.
  package "demo-web" {
    version = prior.package["demo-web"] != "" ? prior.package["demo-web"] : null
    state   = prior.package["demo-web"] == "" ? "absent" : null
  }
}
