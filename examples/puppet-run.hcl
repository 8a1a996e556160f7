# A Puppet run with the agent disabled around it: disable the scheduled agent so
# it cannot interfere, apply a package change, re-enable the agent and run it
# once with the given tags. Canary across datacenters first.
#
#   drover run examples/puppet-run.hcl --var tags='["base","web"]'

playbook "puppet-run" {
  description = "Controlled Puppet run, agent disabled meanwhile"
}

variable "tags" {
  type    = list(string)
  default = ["base"]
}

variable "noop" {
  type    = bool
  default = false
}

targets {
  hosts = ["all"]
  where = can(facts.puppet.version)
}

settings {
  become = true
}

canary {
  hosts     = "10%"
  spread_by = facts.datacenter
  gate {
    confirm = true
  }
}

remaining {
  parallel   = 5
  max_failed = "5%"
}

steps {
  puppet "disable" {
    action = "disable"
    reason = "drover puppet-run in progress"
  }
  package "ca-certificates" { state = "latest" }
  puppet "enable" { action = "enable" }
  puppet "run" {
    tags    = var.tags
    noop    = var.noop
    timeout = "30m"
  }
}

rollback {
  puppet "enable" { action = "enable" }
}
