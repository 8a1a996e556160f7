defaults {
  user   = "deploy"
  port   = 22
  key    = "~/.ssh/fleet"
  become = true
  vars   = { datacenter = "dc1", tier = "base" }
}

host "web-[01:04]" {
  address    = "10.0.1.${index}"
  proxy_jump = "bastion"
  vars       = { role = "web", fqdn = "${name}.example.com" }
}

host "db1" {
  address = "10.0.2.1"
  port    = 2222
  user    = "postgres"
  keys    = ["~/.ssh/db", "~/.ssh/db-old"]
  become  = false
  vars    = { tier = "host", weight = 1.5, tags = ["a", "b"], limits = { cpu = 2 } }
}

host "bastion" {}

group "web" {
  hosts    = ["web-[01:02]"]
  children = ["frontend"]
  vars     = { http_port = 8080, tier = "web" }
}

group "frontend" {
  hosts = ["web-03", "web-04"]
  vars  = { tier = "frontend" }
}

group "db" {
  hosts = ["db1"]
  vars  = { tier = "db" }
}
