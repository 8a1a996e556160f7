# Nightly security patching inside a maintenance window: a canary, then batches
# of 10%, rebooting only hosts that need it. Run it from cron:
#
#   0 1 * * * drover run /etc/drover/nightly-patch.hcl --yes --report /var/log/drover/patch.json

playbook "nightly-patch" {
  description = "Security updates, reboot when required"
}

variable "webhook" {
  type      = string
  default   = "http://127.0.0.1:9000/hook"
  sensitive = true
}

targets {
  hosts = ["all", "!db"]
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
    prometheus "errors" {
      url   = "http://127.0.0.1:9090"
      query = "sum(rate(node_systemd_unit_state{state=\"failed\"}[5m]))"
      max   = 0
    }
  }
}

batch "fleet" {
  size       = "10%"
  pause      = "30s"
  max_failed = "2%"
}

steps {
  patch { security_only = true }
  reboot { timeout = "15m" }
}

health {
  tcp "ssh" {
    address = "${host.address}:22"
    retries = 30
  }
}

notify { webhook = var.webhook }
