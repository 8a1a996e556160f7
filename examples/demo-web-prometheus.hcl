# Upgrade demo-web with Prometheus watching: the canary first, then a quarter of the
# fleet in pairs, then the rest. After the canary and after every pair, a real Prometheus
# (the lab's, `drover-lab up --prometheus`, scraping every host's demo-web /metrics each
# second) must show the new version serving and every instance healthy.
# A release whose health check fails halts at the canary, which is rolled back.
#
#   drover run examples/demo-web-prometheus.hcl --var version=2.0 \
#     --var prometheus=http://127.1.0.253:9090

playbook "demo-web-prometheus" {
  description = "Upgrade demo-web, one canary first, gated on Prometheus"
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

variable "prometheus" {
  type        = string
  default     = "http://127.1.0.253:9090"
  description = "The Prometheus server that scrapes demo-web (the demo lab's by default)"
}

targets {
  hosts = ["all"]
  where = facts.os.family == "Debian"
}

settings {
  forks        = 20
  become       = true
  step_timeout = "2m"
  lock         = true
}

canary {
  hosts = 1
  gate {
    timeout  = "30s"
    interval = "1s"
    # First: Prometheus has scraped the canary's new release (so the next check
    # judges fresh data, not the old release's last scrape).
    prometheus "rolled-out" {
      url   = var.prometheus
      query = "sum(demo_web_version_info{version=\"${var.version}\"})"
      min   = 1
    }
    prometheus "healthy" {
      url   = var.prometheus
      query = "min(demo_web_healthy)"
      min   = 1
    }
  }
}

batch "early" {
  hosts      = "25%"
  size       = 2
  pause      = "1s"
  max_failed = 0
  gate {
    timeout  = "30s"
    interval = "1s"
    prometheus "healthy" {
      url   = var.prometheus
      query = "min(demo_web_healthy)"
      min   = 1
    }
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
}

health {
  # The service answers "ok VERSION" on ADDRESS:8080/health; a broken release does not.
  http "health" {
    url        = "http://${host.address}:8080/health"
    status     = 200
    body_regex = "^ok ${replace(var.version, ".", "\\.")}$"
    retries    = 3
    interval   = "1s"
  }
}

rollback {
  # prior.package is "" when the host did not have the package: remove it again.
  package "demo-web" {
    version = prior.package["demo-web"] != "" ? prior.package["demo-web"] : null
    state   = prior.package["demo-web"] == "" ? "absent" : null
  }
}
