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
    wait    = "5s"
    timeout = "30s"
    tcp "ssh" { address = "127.0.0.1:22" }
  }
}

batch "early" {
  hosts      = "25%"
  size       = 2
  pause      = "2s"
  max_failed = 0
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
    run = "demo-web --version | grep -F -- ${var.version}"
  }
}

health {
  command "running" {
    run      = "test -f /etc/demo-web.conf"
    retries  = 5
    interval = "1s"
  }
}

rollback {
  package "demo-web" { version = prior.package["demo-web"] }
}
