playbook "typo" {}

targets {
  where = facts.os.famliy == "Debian"
}

steps {
  command "a" {
    run  = "true"
    when = facts.rol == "web"
  }
}
