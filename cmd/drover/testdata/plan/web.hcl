# The plan tests' playbook: every part plan renders once.
playbook "web" {
  description = "Upgrade the web package, one canary per datacenter first"
}

variable "version" {
  type    = string
  default = "2.0"
}

variable "token" {
  type      = string
  default   = "s3cr3t-t0ken"
  sensitive = true
}

targets {
  hosts = ["all", "!h8"]
  where = facts.os.family == "Debian"
}

settings {
  forks        = 10
  become       = true
  step_timeout = "5m"
  lock         = true
  window {
    days  = ["mon", "tue"]
    start = "01:00"
    end   = "05:00"
  }
}

canary {
  hosts     = 1
  spread_by = facts.datacenter
  gate {
    wait = "5s"
    tcp "ssh" { address = "127.0.0.1:22" }
    http "lb" {
      url    = "http://127.0.0.1:9000/healthz?stage=${stage.name}"
      status = 200
    }
  }
}

batch "early" {
  hosts      = 2
  size       = 1
  pause      = "2s"
}

remaining {
  parallel   = 2
  max_failed = "50%"
}

before {
  http "drain" {
    url    = "http://127.0.0.1:9000/pool/${host.name}?token=${var.token}"
    method = "DELETE"
  }
}

steps {
  package "demo-web" { version = var.version }
  service "demo-web" {
    state = "restarted"
    when  = facts.init_system == "systemd"
  }
  command "smoke" {
    run     = "demo-web --version | grep -F -- ${var.version}"
    timeout = "30s"
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
