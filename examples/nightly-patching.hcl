# Nightly patching inside a maintenance window: one canary, then two batches,
# then the rest of the fleet. Each host gets its security updates (or, with
# security_only = false, every update), reboots only when the system says it
# must (/var/run/reboot-required, `needs-restarting -r`), and has to pass its
# health checks over the new connection before the rollout moves on. A failed
# gate or too many failed hosts halts the rollout (exit 3) before the next batch.
#
# Run it from cron (see docs/patching.md for a systemd timer instead):
#
#   30 1 * * 1-5 drover run /etc/drover/nightly-patching.hcl --yes --report /var/log/drover/patching.json

playbook "nightly-patching" {
  description = "Security updates, reboot when required, canary first"
}

variable "security_only" {
  type    = bool
  default = true
}

variable "webhook" {
  type      = string
  default   = "http://127.0.0.1:9000/hook"
  sensitive = true
}

targets {
  hosts = ["all"]
  where = facts.os.family == "Debian" || facts.os.family == "RedHat"
}

settings {
  forks        = 25
  become       = true
  step_timeout = "30m"
  lock         = true
  window {
    days     = ["mon", "tue", "wed", "thu", "fri"]
    start    = "01:00"
    end      = "05:00"
    timezone = "UTC"
  }
}

canary {
  hosts = 1
  gate {
    wait = "2m"
    prometheus "failed-units" {
      url   = "http://127.0.0.1:9090"
      query = "sum(node_systemd_unit_state{state=\"failed\"})"
      max   = 0
    }
  }
}

batch "early" {
  hosts      = "10%"
  size       = 2
  pause      = "1m"
  max_failed = 0
}

remaining {
  parallel   = 10
  max_failed = "2%"
}

steps {
  patch {
    mode          = "upgrade"           # or "dist-upgrade": also new and removed dependencies
    security_only = var.security_only
    exclude       = ["demo-web"]        # held back: upgraded by its own canary rollout
  }
  reboot {
    timeout = "15m"                     # for the host to come back with a new boot id
  }
}

health {
  tcp "ssh" {
    address = "${host.address}:22"
    retries = 30
  }
  command "no-failed-units" {
    run      = "! systemctl --failed --no-legend 2>/dev/null | grep -q ."
    retries  = 10
    interval = "5s"
  }
}

notify { webhook = var.webhook }
